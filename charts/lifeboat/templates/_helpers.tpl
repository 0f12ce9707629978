{{/* Names and labels shared by every manifest of the chart. */}}

{{- define "lifeboat.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "lifeboat.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "lifeboat.labels" -}}
{{ include "lifeboat.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "lifeboat.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The resources directory inside the pod; API-written files live here too. */}}
{{- define "lifeboat.resourcesDir" -}}
{{ .Values.dataDirectory }}/resources
{{- end -}}

{{/* Fail early on combinations the schema cannot express. */}}
{{- define "lifeboat.validate" -}}
{{- if and (eq .Values.catalog.type "postgresql") (not .Values.catalog.postgresql.urlSecret.name) -}}
{{- fail "catalog.postgresql.urlSecret.name: expected the name of a Secret holding the catalog URL when catalog.type is postgresql" -}}
{{- end -}}
{{- if and (eq .Values.resourceFiles.source "git") (not .Values.resourceFiles.git.repository) -}}
{{- fail "resourceFiles.git.repository: expected a repository URL when resourceFiles.source is git" -}}
{{- end -}}
{{- end -}}

{{/* Root's file capabilities only: read every volume, restore owners and modes. */}}
{{- define "lifeboat.securityContext" -}}
runAsUser: {{ .Values.securityContext.runAsUser }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
  add: {{ toJson .Values.securityContext.capabilities }}
{{- end -}}
