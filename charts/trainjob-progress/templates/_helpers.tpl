{{/*
Chart name, or nameOverride. Truncated to 63 characters, the limit of a label value.
*/}}
{{- define "trainjob-progress.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Prefix of every resource name. Truncated to 40 characters so that the longest suffix
("-aggregator-viewer", "-webhook-tls") keeps names within 63 characters.
*/}}
{{- define "trainjob-progress.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Value of the helm.sh/chart label: chart name and version.
*/}}
{{- define "trainjob-progress.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object. They include the chart version, so selectors use
trainjob-progress.selectorLabels instead.
*/}}
{{- define "trainjob-progress.labels" -}}
helm.sh/chart: {{ include "trainjob-progress.chart" . }}
{{ include "trainjob-progress.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: trainjob-progress
{{- end }}

{{/*
Labels that identify the release, stable across upgrades.
*/}}
{{- define "trainjob-progress.selectorLabels" -}}
app.kubernetes.io/name: {{ include "trainjob-progress.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels and selector labels of one component. Call with (dict "context" $ "component" NAME).
*/}}
{{- define "trainjob-progress.componentLabels" -}}
{{ include "trainjob-progress.labels" .context }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "trainjob-progress.componentSelectorLabels" -}}
{{ include "trainjob-progress.selectorLabels" .context }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Names of the webhook's and the aggregator's objects.
*/}}
{{- define "trainjob-progress.webhook.fullname" -}}
{{- printf "%s-webhook" (include "trainjob-progress.fullname" .) }}
{{- end }}

{{- define "trainjob-progress.aggregator.fullname" -}}
{{- printf "%s-aggregator" (include "trainjob-progress.fullname" .) }}
{{- end }}

{{/*
Name of the Secret with the webhook's serving certificate.
*/}}
{{- define "trainjob-progress.webhook.secretName" -}}
{{- default (printf "%s-webhook-tls" (include "trainjob-progress.fullname" .)) .Values.certificates.secretName }}
{{- end }}

{{/*
Name of the MutatingWebhookConfiguration. It is cluster-scoped, so it carries the
release namespace to keep two releases of the same name apart.
*/}}
{{- define "trainjob-progress.webhook.configurationName" -}}
{{- printf "%s-%s" (include "trainjob-progress.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Name of the cluster-scoped RBAC objects, also made unique per release namespace.
Call with (dict "context" $ "suffix" SUFFIX).
*/}}
{{- define "trainjob-progress.clusterObjectName" -}}
{{- printf "%s-%s-%s" (include "trainjob-progress.fullname" .context) .context.Release.Namespace .suffix | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
In-cluster DNS names of the Services.
*/}}
{{- define "trainjob-progress.webhook.serviceHost" -}}
{{- printf "%s.%s.svc" (include "trainjob-progress.webhook.fullname" .) .Release.Namespace }}
{{- end }}

{{- define "trainjob-progress.aggregator.serviceHost" -}}
{{- printf "%s.%s.svc" (include "trainjob-progress.aggregator.fullname" .) .Release.Namespace }}
{{- end }}

{{/*
WebSocket URL of the aggregator's ingest endpoint, as the sidecars dial it.
*/}}
{{- define "trainjob-progress.sidecar.aggregatorUrl" -}}
{{- if .Values.sidecar.aggregatorUrl }}
{{- .Values.sidecar.aggregatorUrl }}
{{- else }}
{{- printf "ws://%s:%d/v1/ingest" (include "trainjob-progress.aggregator.serviceHost" .) (int .Values.aggregator.servicePort) }}
{{- end }}
{{- end }}

{{/*
Image reference from (dict "repository" R "tag" T "digest" D "context" $): the tag
defaults to the chart's appVersion, and a digest is appended after it.
*/}}
{{- define "trainjob-progress.imageReference" -}}
{{- $reference := printf "%s:%s" .repository (default .context.Chart.AppVersion .tag) }}
{{- if .digest }}
{{- $reference = printf "%s@%s" $reference .digest }}
{{- end }}
{{- $reference }}
{{- end }}

{{- define "trainjob-progress.image" -}}
{{- include "trainjob-progress.imageReference" (dict "repository" .Values.image.repository "tag" .Values.image.tag "digest" .Values.image.digest "context" .) }}
{{- end }}

{{/*
Sidecar image: the main image unless sidecar.image.repository is set. A sidecar tag or
digest alone applies to the main repository.
*/}}
{{- define "trainjob-progress.sidecar.image" -}}
{{- $sidecar := .Values.sidecar.image }}
{{- $repository := default .Values.image.repository $sidecar.repository }}
{{- $tag := default .Values.image.tag $sidecar.tag }}
{{- $digest := $sidecar.digest }}
{{- if and (not $sidecar.repository) (not $sidecar.tag) (not $digest) }}
{{- $digest = .Values.image.digest }}
{{- end }}
{{- include "trainjob-progress.imageReference" (dict "repository" $repository "tag" $tag "digest" $digest "context" .) }}
{{- end }}

{{/*
Environment variable with the pod's own namespace, from the downward API.
*/}}
{{- define "trainjob-progress.namespaceEnv" -}}
- name: TRAINJOB_PROGRESS_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- end }}

{{/*
Fails the render when values contradict each other. The schema checks each value on
its own, and this checks combinations.
*/}}
{{- define "trainjob-progress.validateValues" -}}
{{- $certificates := .Values.certificates }}
{{- if eq $certificates.mode "provided" }}
{{- if not $certificates.secretName }}
{{- fail "certificates.mode is provided but certificates.secretName is empty: set it to the Secret that contains tls.crt and tls.key" }}
{{- end }}
{{- if not $certificates.caBundle }}
{{- fail "certificates.mode is provided but certificates.caBundle is empty: set it to the base64-encoded PEM of the CA that signed the certificate" }}
{{- end }}
{{- if not (contains "-----BEGIN CERTIFICATE-----" (b64dec $certificates.caBundle)) }}
{{- fail "certificates.caBundle is not a base64-encoded PEM certificate: encode the CA file with `base64 -w0 ca.crt`" }}
{{- end }}
{{- else if $certificates.caBundle }}
{{- fail (printf "certificates.caBundle is set but certificates.mode is %s, which fills the caBundle itself: remove certificates.caBundle or use certificates.mode=provided" $certificates.mode) }}
{{- end }}
{{- $selfSigned := $certificates.selfSigned }}
{{- if lt (int $selfSigned.caValidityDays) (int $selfSigned.certificateValidityDays) }}
{{- fail (printf "certificates.selfSigned.caValidityDays (%d) must not be below certificates.selfSigned.certificateValidityDays (%d): a certificate cannot outlive its CA" (int $selfSigned.caValidityDays) (int $selfSigned.certificateValidityDays)) }}
{{- end }}
{{- if and (ne $certificates.mode "certManager") $certificates.certManager.issuerRef.name }}
{{- fail (printf "certificates.certManager.issuerRef.name is set but certificates.mode is %s: remove it or use certificates.mode=certManager" $certificates.mode) }}
{{- end }}
{{- $webhook := .Values.webhook }}
{{- if and (gt (int $webhook.replicas) 1) (ge (int $webhook.podDisruptionBudget.minAvailable) (int $webhook.replicas)) }}
{{- fail (printf "webhook.podDisruptionBudget.minAvailable (%d) must be below webhook.replicas (%d), or no webhook pod could ever be evicted" (int $webhook.podDisruptionBudget.minAvailable) (int $webhook.replicas)) }}
{{- end }}
{{- if and (eq (int $webhook.replicas) 0) (not $webhook.clientConfig.url) }}
{{- fail "webhook.replicas is 0 but webhook.clientConfig.url is empty: the Service would have no pods behind it, so set webhook.replicas to 1 or more, or point webhook.clientConfig.url at a running webhook" }}
{{- end }}
{{- end }}
