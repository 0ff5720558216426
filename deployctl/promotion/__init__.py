"""Promotion, pure: the request and its gates (``gates``), the evidence a ledger holds (``evidence``), the plan as
shown (``plan``) and the entries it writes (``entries``).
"""
