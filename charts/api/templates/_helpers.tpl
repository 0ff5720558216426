{{/*
Chart name, truncated to the 63-character DNS label limit.
*/}}
{{- define "api.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: <release>-<chart> unless the release name already contains the chart name.
*/}}
{{- define "api.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
helm.sh/chart label value.
*/}}
{{- define "api.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
app.kubernetes.io/version: the image tag when set, else the chart appVersion,
sanitised into a valid label value (<=63 chars, alphanumeric at both ends).
*/}}
{{- define "api.version" -}}
{{- $v := default .Chart.AppVersion .Values.image.tag | toString }}
{{- $v = regexReplaceAll "[^A-Za-z0-9_.-]" $v "_" | trunc 63 }}
{{- $v = regexReplaceAll "^[^A-Za-z0-9]+" $v "" }}
{{- regexReplaceAll "[^A-Za-z0-9]+$" $v "" }}
{{- end }}

{{/*
Selector labels: minimal and stable. Never add anything here that changes between
releases: Deployment selectors are immutable.
*/}}
{{- define "api.selectorLabels" -}}
app.kubernetes.io/name: {{ include "api.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Common labels (Kubernetes recommended labels + helm.sh/chart).
*/}}
{{- define "api.labels" -}}
helm.sh/chart: {{ include "api.chart" . }}
{{ include "api.selectorLabels" . }}
{{- with (include "api.version" .) }}
app.kubernetes.io/version: {{ . | quote }}
{{- end }}
app.kubernetes.io/component: {{ .Values.component }}
app.kubernetes.io/part-of: {{ .Values.partOf }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "api.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "api.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Container image reference.
  digest set          -> repository@sha256:...   (tag is informational only)
  tag set, no digest  -> repository:tag
  neither             -> rendering fails
Empty strings count as unset.
*/}}
{{- define "api.image" -}}
{{- $repo := .Values.image.repository | toString }}
{{- $tag := .Values.image.tag | default "" | toString }}
{{- $digest := .Values.image.digest | default "" | toString }}
{{- if not $repo }}
{{- fail "image.repository is empty: set it in values.yaml or with --set image.repository=<registry>/<name>" }}
{{- end }}
{{- if $digest }}
{{- printf "%s@%s" $repo $digest }}
{{- else if $tag }}
{{- printf "%s:%s" $repo $tag }}
{{- else }}
{{- fail "image: neither image.tag nor image.digest is set. deployctl sets them (dev: --set image.digest=sha256:...; prod: `deployctl promote` writes image.tag/image.digest in values-prod.yaml). For a manual render pass --set-string image.tag=<tag> or --set image.digest=sha256:<64 hex>." }}
{{- end }}
{{- end }}

{{/*
deployctl provenance annotations (Deployment and pod template). Empty values are omitted.
*/}}
{{- define "api.provenanceAnnotations" -}}
{{- with .Values.build.gitSha }}
deployctl.dev/git-sha: {{ . | toString | quote }}
{{- end }}
{{- with .Values.image.digest }}
deployctl.dev/image-digest: {{ . | toString | quote }}
{{- end }}
{{- with .Values.image.tag }}
deployctl.dev/image-tag: {{ . | toString | quote }}
{{- end }}
{{- end }}

{{/*
PodDisruptionBudget / generic "is this value set" helper: "" and nil are unset, 0 is set.
*/}}
{{- define "api.isSet" -}}
{{- if and (not (kindIs "invalid" .)) (ne (toString .) "") }}true{{ end }}
{{- end }}
