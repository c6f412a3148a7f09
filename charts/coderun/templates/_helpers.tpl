{{/* Name of the chart, for labels. */}}
{{- define "coderun.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Prefix of every resource name: the release name, with the chart name appended unless the
release name already contains it ("coderun" gives coderun-operator, coderun-front). At most
57 characters, so that with the longest suffix ("-front") a name stays within 63.
*/}}
{{- define "coderun.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 57 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 57 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 57 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "coderun.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "coderun.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: coderun
{{- end }}

{{/* Selector labels of a component: include "coderun.selectorLabels" (list . "operator"). */}}
{{- define "coderun.selectorLabels" -}}
{{- $root := index . 0 }}
app.kubernetes.io/name: {{ include "coderun.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* All labels of a component's objects. */}}
{{- define "coderun.componentLabels" -}}
{{ include "coderun.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{/* An image reference: include "coderun.image" (list . .Values.operator.image). */}}
{{- define "coderun.image" -}}
{{- $root := index . 0 }}
{{- printf "%s/%s:%s" $root.Values.image.registry (index . 1).repository (default $root.Chart.AppVersion $root.Values.image.tag) }}
{{- end }}

{{/*
Where and with what a component's pods run: pull secrets, priority, node selector,
tolerations, affinity. include "coderun.podPlacement" (list . .Values.operator)
*/}}
{{- define "coderun.podPlacement" -}}
{{- $root := index . 0 }}
{{- $c := index . 1 }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $c.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
With several replicas, keep one through voluntary disruptions (node drains):
include "coderun.podDisruptionBudget" (list . "front" .Values.front.replicaCount)
*/}}
{{- define "coderun.podDisruptionBudget" -}}
{{- $root := index . 0 }}
{{- $component := index . 1 }}
{{- if gt (int (index . 2)) 1 }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "coderun.fullname" $root }}-{{ $component }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "coderun.componentLabels" (list $root $component) | nindent 4 }}
spec:
  minAvailable: 1
  selector:
    matchLabels:
      {{- include "coderun.selectorLabels" (list $root $component) | nindent 6 }}
{{- end }}
{{- end }}

{{/* True (non-empty) when the front service keeps its data in PostgreSQL. */}}
{{- define "coderun.postgres" -}}
{{- if or .Values.front.database.url .Values.front.database.existingSecret }}true{{ end }}
{{- end }}

{{/* The Secret holding the PostgreSQL URL, and its key. */}}
{{- define "coderun.databaseSecret" -}}
{{- default (printf "%s-database" (include "coderun.fullname" .)) .Values.front.database.existingSecret }}
{{- end }}
{{- define "coderun.databaseSecretKey" -}}
{{- if .Values.front.database.existingSecret }}{{ .Values.front.database.existingSecretKey }}{{ else }}url{{ end }}
{{- end }}

{{/*
The security context of the operator's and the front's containers, and of their pods: non-root,
no privileges, read-only root filesystem, RuntimeDefault seccomp. They pass the restricted Pod
Security Standard, so the release namespace may enforce it too.
*/}}
{{- define "coderun.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}
{{- define "coderun.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{/*
Checks of combinations values.schema.json cannot express clearly. Each fails with a message
saying what to change.
*/}}
{{- define "coderun.validate" -}}
{{- if eq .Values.runs.namespace .Release.Namespace }}
{{- fail (printf "runs.namespace is %q, the release namespace: runs need a namespace of their own (everything in it is cut off from the network and held to the restricted Pod Security Standard); install the release into another namespace (helm install -n coderun-system) or set runs.namespace to another" .Values.runs.namespace) }}
{{- end }}
{{- if and (gt (int .Values.front.replicaCount) 1) (not (include "coderun.postgres" .)) }}
{{- fail (printf "front.replicaCount is %d, but the front service keeps its data in SQLite on a ReadWriteOnce volume, which one replica can use: set front.database.existingSecret (or front.database.url) to a PostgreSQL URL, or front.replicaCount to 1" (int .Values.front.replicaCount)) }}
{{- end }}
{{- if and .Values.front.database.url .Values.front.database.existingSecret }}
{{- fail "front.database.url and front.database.existingSecret are both set: set one" }}
{{- end }}
{{- if and .Values.front.auth.enabled (not .Values.front.auth.existingSecret) }}
{{- fail "front.auth.enabled is true but front.auth.existingSecret is empty: create a Secret holding the key file (coderun-front keys new --id NAME prints a key and its entry) and name it there" }}
{{- end }}
{{- if and .Values.front.auth.anonymous.enabled (not .Values.front.auth.enabled) }}
{{- fail "front.auth.anonymous.enabled is true but front.auth.enabled is false: without API keys every request is anonymous and unlimited; turn front.auth.enabled on too" }}
{{- end }}
{{- if and .Values.ingress.enabled .Values.ingress.tls.secretName (not .Values.ingress.host) }}
{{- fail "ingress.tls.secretName is set but ingress.host is empty: TLS needs the host name the certificate is for" }}
{{- end }}
{{- $r := .Values.runs }}
{{- if gt (int $r.defaultLimits.timeoutSeconds) (int $r.maxLimits.timeoutSeconds) }}
{{- fail (printf "runs.defaultLimits.timeoutSeconds (%d) is above runs.maxLimits.timeoutSeconds (%d)" (int $r.defaultLimits.timeoutSeconds) (int $r.maxLimits.timeoutSeconds)) }}
{{- end }}
{{- range $key := list "memory" "cpu" }}
{{- $default := get $r.defaultLimits $key }}
{{- $max := get $r.maxLimits $key }}
{{- if gt (float64 (include "coderun.quantity" $default)) (float64 (include "coderun.quantity" $max)) }}
{{- fail (printf "runs.defaultLimits.%s (%v) is above runs.maxLimits.%s (%v)" $key $default $key $max) }}
{{- end }}
{{- end }}
{{- if lt (float64 (include "coderun.seconds" $r.startTimeout)) 10.0 }}
{{- fail (printf "runs.startTimeout is %s: it must be at least 10s, the time a run's pod may take to be scheduled and pull its image" $r.startTimeout) }}
{{- end }}
{{- if le (float64 (include "coderun.seconds" .Values.front.queueWait)) 0.0 }}
{{- fail (printf "front.queueWait is %s: it must be positive" .Values.front.queueWait) }}
{{- end }}
{{- if gt (add (int64 $r.runUIDMin) (int64 $r.runUIDCount)) 2147483648 }}
{{- fail (printf "runs.runUIDMin (%d) + runs.runUIDCount (%d) goes past 2^31: run uids must stay below 2147483648" (int64 $r.runUIDMin) (int64 $r.runUIDCount)) }}
{{- end }}
{{- end }}

{{/* A Kubernetes quantity as a number, for comparisons: "1Gi" gives 1073741824, "500m" 0.5. */}}
{{- define "coderun.quantity" -}}
{{- $q := toString . }}
{{- $suffix := regexFind "(m|k|M|G|T|Ki|Mi|Gi|Ti)$" $q }}
{{- $factors := dict "" 1.0 "m" 0.001 "k" 1000.0 "M" 1000000.0 "G" 1000000000.0 "T" 1000000000000.0 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 }}
{{- mulf (float64 (trimSuffix $suffix $q)) (get $factors $suffix) }}
{{- end }}

{{/* Seconds of a Go duration: "2m" gives 120, "1h30m" 5400, "500ms" 0.5. */}}
{{- define "coderun.seconds" -}}
{{- $total := 0.0 }}
{{- $factors := dict "h" 3600.0 "m" 60.0 "s" 1.0 "ms" 0.001 }}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(ms|s|m|h)" (toString .) -1 }}
{{- $unit := regexFind "(ms|s|m|h)$" . }}
{{- $total = addf $total (mulf (float64 (trimSuffix $unit .)) (get $factors $unit)) }}
{{- end }}
{{- $total }}
{{- end }}
