{{- define "firebreak.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "firebreak.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "firebreak.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "firebreak.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "firebreak.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The rules the controller needs; see the chart README for why each verb is there. */}}
{{- define "firebreak.rules" -}}
- apiGroups: ["firebreak.dev"]
  resources: ["rollouts"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["firebreak.dev"]
  resources: ["rollouts/status"]
  verbs: ["patch"]
- apiGroups: ["firebreak.dev"]
  resources: ["incidents"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["firebreak.dev"]
  resources: ["incidents/status"]
  verbs: ["patch"]
- apiGroups: ["apps"]
  resources: ["replicasets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "patch"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["core.openfeature.dev"]
  resources: ["featureflags"]
  verbs: ["get", "patch"]
# Traffic routing: the stable/canary/baseline Services' selectors (created when absent) and the
# Gateway API routes whose weights Firebreak writes (a managed HTTPRoute is created).
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "create", "patch"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes", "grpcroutes"]
  verbs: ["get", "list", "watch", "create", "patch"]
{{- end -}}
