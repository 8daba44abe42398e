{{/* Chart name. */}}
{{- define "regate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: the prefix of every object. */}}
{{- define "regate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "regate.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "regate.version" -}}
{{- default .Chart.AppVersion .Values.image.tag | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "regate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "regate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "regate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "regate.selectorLabels" . }}
app.kubernetes.io/version: {{ include "regate.version" . | quote }}
app.kubernetes.io/component: admission-webhook
app.kubernetes.io/part-of: regate
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "regate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "regate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* registry/repository[:tag][@digest] */}}
{{- define "regate.image" -}}
{{- $ref := printf "%s/%s" .Values.image.registry .Values.image.repository -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if $tag }}{{ $ref = printf "%s:%s" $ref $tag }}{{ end -}}
{{- if .Values.image.digest }}{{ $ref = printf "%s@%s" $ref .Values.image.digest }}{{ end -}}
{{- $ref -}}
{{- end -}}

{{/* Names of the cert-manager objects and of the serving Secret. */}}
{{- define "regate.selfSignedIssuer" -}}{{ include "regate.fullname" . }}-selfsigned{{- end -}}
{{- define "regate.caCertificate" -}}{{ include "regate.fullname" . }}-ca{{- end -}}
{{- define "regate.caIssuer" -}}{{ include "regate.fullname" . }}-ca{{- end -}}
{{- define "regate.servingCertificate" -}}{{ include "regate.fullname" . }}-tls{{- end -}}
{{- define "regate.tlsSecret" -}}
{{- if .Values.certManager.enabled -}}
{{- include "regate.fullname" . }}-tls
{{- else -}}
{{- required "tls.existingSecret is required when certManager.enabled=false" .Values.tls.existingSecret -}}
{{- end -}}
{{- end -}}

{{/* The webhook configurations' CA: cert-manager's cainjector or tls.caBundle (always tls.caBundle in URL
mode: the serving certificate of a regate outside the cluster is not a Certificate of this release). */}}
{{- define "regate.webhookAnnotations" -}}
{{- if and .Values.certManager.enabled (not .Values.webhook.url) -}}
cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "regate.servingCertificate" . }}
{{- end }}
{{- end -}}

{{- define "regate.caBundle" -}}
{{- if .Values.webhook.url -}}
caBundle: {{ required "tls.caBundle is required with webhook.url" .Values.tls.caBundle }}
{{- else if not .Values.certManager.enabled -}}
caBundle: {{ required "tls.caBundle is required when certManager.enabled=false" .Values.tls.caBundle }}
{{- end }}
{{- end -}}

{{/* Where the API server calls regate: the release's Service, or webhook.url (regate outside the
cluster). The argument is a dict with the root context (.root) and the path (.path). */}}
{{- define "regate.clientConfig" -}}
clientConfig:
  {{- if .root.Values.webhook.url }}
  url: {{ printf "%s%s" (trimSuffix "/" .root.Values.webhook.url) .path | quote }}
  {{- else }}
  service:
    name: {{ include "regate.fullname" .root }}
    namespace: {{ .root.Release.Namespace }}
    path: {{ .path }}
    port: 443
  {{- end }}
  {{- with include "regate.caBundle" .root }}
  {{- . | nindent 2 }}
  {{- end }}
{{- end -}}

{{/* True (non-empty) when regate runs in the cluster: false in URL mode, where the release holds only
the webhook configurations, RBAC, the ServiceAccount, the policies ConfigMap and the monitoring rules. */}}
{{- define "regate.inCluster" -}}
{{- if not .Values.webhook.url }}true{{ end -}}
{{- end -}}

{{/* Namespaces the webhooks never see: the release namespace, kube-system, and webhook.excludeNamespaces. */}}
{{- define "regate.namespaceSelector" -}}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values:
        {{- range (concat (list .Release.Namespace "kube-system") .Values.webhook.excludeNamespaces | uniq) }}
        - {{ . | quote }}
        {{- end }}
{{- end -}}

{{/* The regate.yaml layer rendered into the policies ConfigMap. */}}
{{- define "regate.config" -}}
{{- $config := dict "apiVersion" "regate.dev/v1alpha1" "kind" "Config" -}}
{{- $config = mergeOverwrite $config (deepCopy .Values.config) -}}
{{- if eq .Values.webhook.mode "warn" -}}
{{- $config = mergeOverwrite $config (dict "enforcement" "warn" "onError" "warn") -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

{{/* ConfigMap key of a bundle path (keys cannot hold `/`). */}}
{{- define "regate.policyKey" -}}
{{- . | replace "/" "__" -}}
{{- end -}}
