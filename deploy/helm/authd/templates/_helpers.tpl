{{/* Names and labels shared by every template. */}}
{{- define "authd.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "authd.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "authd.instanceLabels" -}}
app.kubernetes.io/name: {{ include "authd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The serving pods only: the migration Job's pods must never match these. */}}
{{- define "authd.selectorLabels" -}}
{{ include "authd.instanceLabels" . }}
app.kubernetes.io/component: server
{{- end -}}

{{- define "authd.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "authd.instanceLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "authd.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "authd.scheme" -}}
{{- if .Values.tls.existingSecret }}HTTPS{{ else }}HTTP{{ end -}}
{{- end -}}

{{/*
The environment every authd container gets (server and migration alike). Secrets
are referenced, never copied: the database URL from a Secret key, the KEK as a file.
*/}}
{{- define "authd.env" -}}
- name: AUTHD_ISSUER
  value: {{ required "issuer is required: the public https:// URL of authd" .Values.issuer | quote }}
- name: AUTHD_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "database.existingSecret is required: a Secret holding the PostgreSQL URL" .Values.database.existingSecret }}
      key: {{ .Values.database.key }}
- name: AUTHD_KEK_FILE
  value: /var/run/secrets/authd/kek/{{ .Values.kek.key }}
{{- if .Values.redis.existingSecret }}
- name: AUTHD_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.key }}
{{- else if .Values.redis.url }}
- name: AUTHD_REDIS_URL
  value: {{ .Values.redis.url | quote }}
{{- end }}
- name: AUTHD_REDIS_PREFIX
  value: {{ .Values.redisPrefix | quote }}
- name: AUTHD_LOG_FORMAT
  value: json
{{- range $name, $value := .Values.extraEnv }}
{{- $owner := get (include "authd.managedEnv" $ | fromYaml) $name }}
{{- if $owner }}
{{- fail (printf "extraEnv.%s: the chart sets %s itself (%s); a duplicate env name is not an error in Kubernetes, one of the two would silently win" $name $name $owner) }}
{{- end }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/*
The AUTHD_* names the chart sets (here or in deployment.yaml), each with how to
set it instead. extraEnv may not repeat them: a duplicate env name is not an error in
Kubernetes, one of the two just wins, so an override would work or not depending
on the order of rendering. AUTHD_KEK is listed because it is a secret.
*/}}
{{- define "authd.managedEnv" -}}
AUTHD_ISSUER: "set the value issuer"
AUTHD_DATABASE_URL: "set the value database.existingSecret"
AUTHD_KEK: "set the value kek.existingSecret"
AUTHD_KEK_FILE: "set the value kek.existingSecret"
AUTHD_REDIS_URL: "set the value redis.url or redis.existingSecret"
AUTHD_REDIS_PREFIX: "set the value redisPrefix"
AUTHD_LOG_FORMAT: "always json"
AUTHD_HOST: "fixed: the probes and the Service expect 0.0.0.0:8000"
AUTHD_PORT: "fixed: the probes and the Service expect 0.0.0.0:8000"
AUTHD_WORKERS: "set the value workers"
AUTHD_TRUSTED_PROXIES: "set the value trustedProxies"
AUTHD_TLS_CERT_FILE: "set the value tls.existingSecret"
AUTHD_TLS_KEY_FILE: "set the value tls.existingSecret"
AUTHD_ADMIN_LISTEN: "set the value adminListener.enabled (port 9000, its own Service)"
{{- end -}}

{{- define "authd.kekVolume" -}}
- name: kek
  secret:
    secretName: {{ required "kek.existingSecret is required: a Secret holding the KEK" .Values.kek.existingSecret }}
    defaultMode: 0400
    items:
      - key: {{ .Values.kek.key }}
        path: {{ .Values.kek.key }}
{{- end -}}
