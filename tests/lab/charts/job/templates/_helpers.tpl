{{/* Labels every object carries: deployctl finds a release's workloads by app.kubernetes.io/instance. */}}
{{- define "t.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "t.labels" -}}
{{ include "t.selector" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* repository@digest when a digest is set, else repository:tag. */}}
{{- define "t.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ required "set image.digest or image.tag" .Values.image.tag }}
{{- end -}}
{{- end }}

{{/* What deployctl reads back (status, provenance) and the per-workload tuning (charts/README.md). */}}
{{- define "t.annotations" -}}
{{- with .Values.image.digest }}
deployctl.dev/image-digest: {{ . | quote }}
{{- end }}
{{- with .Values.image.tag }}
deployctl.dev/image-tag: {{ . | quote }}
{{- end }}
{{- with .Values.build.gitSha }}
deployctl.dev/git-sha: {{ . | quote }}
{{- end }}
{{- range $key, $value := .Values.annotations }}
{{ $key }}: {{ $value | quote }}
{{- end }}
{{- end }}

{{/* The app container: image, probes (never run in kwok: they only set the readiness grace), resources. */}}
{{- define "t.container" -}}
- name: {{ .Chart.Name }}
  image: {{ include "t.image" . | quote }}
  imagePullPolicy: IfNotPresent
  ports:
    - name: http
      containerPort: 8080
  {{- with .Values.readinessProbe }}
  readinessProbe:
    httpGet:
      path: /ready
      port: http
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{- define "t.podSpec" -}}
terminationGracePeriodSeconds: 1
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
