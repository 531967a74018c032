{{/*
Names, labels, images and the environment of one service. Templates range over
.Values.services (sorted by name) and pass (dict "root" $ "name" $name "svc" $svc).
*/}}

{{- define "llmops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "llmops.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* <fullname>-<service>: Deployment, Service, ServiceAccount, PDB... of one service */}}
{{- define "llmops.component" -}}
{{- printf "%s-%s" (include "llmops.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "llmops.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "llmops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: llmops
{{- end -}}

{{- define "llmops.componentLabels" -}}
{{ include "llmops.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "llmops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "llmops.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "llmops.image" -}}
{{- $image := .root.Values.image -}}
{{- printf "%s/%s%s:%s" $image.repository $image.prefix .name (default .root.Chart.AppVersion $image.tag) -}}
{{- end -}}

{{/* the namespace the workflow worker runs pipelines in */}}
{{- define "llmops.workflowNamespace" -}}
{{- default (printf "llm-ops-%s" .Values.environment) (index .Values.services "workflow").namespace -}}
{{- end -}}

{{/* the Kubernetes client is used by these services only */}}
{{- define "llmops.needsKubeApi" -}}
{{- if has .name (list "serving" "workflow") -}}true{{- end -}}
{{- end -}}

{{/*
The environment of one service: the settings every service shares, the service's own wiring,
then .svc.env (overrides), as plain values; secrets as secretKeyRef (they win over a plain
value of the same name). Rendered sorted by name.
*/}}
{{- define "llmops.env" -}}
{{- $root := .root -}}
{{- $name := .name -}}
{{- $svc := .svc -}}
{{- $v := $root.Values -}}
{{- $flags := $v.integrations -}}
{{- $env := dict
    "ENVIRONMENT" $v.environment
    "LOG_LEVEL" $v.logLevel
    "LOG_JSON" "true"
    "STREAM_NAMESPACE" $v.streamNamespace
    "HEALTH_HOST" "0.0.0.0"
-}}
{{- $secrets := dict "REDIS_URL" (dict "secret" $v.redis.existingSecret "key" (index $v.redis.urlKeys $name)) -}}
{{- if eq $name "gateway" -}}
{{- $_ := set $env "HOST" "0.0.0.0" -}}
{{- $_ := set $env "PORT" (toString $svc.port) -}}
{{- $_ := set $env "DB_AUTO_MIGRATE" (ternary "false" "true" $v.postgresql.migrationJob.enabled) -}}
{{- $_ := set $env "MLFLOW_TRACKING_URI" $v.mlflow.trackingUri -}}
{{- $_ := set $env "EXPERIMENT_TRACKING_ENABLED" (toString $flags.experimentTracking) -}}
{{- $_ := set $env "SERVING_FRAMEWORK_ENABLED" (toString $flags.servingFramework) -}}
{{- $_ := set $env "WORKFLOW_ORCHESTRATION_ENABLED" (toString $flags.workflowOrchestration) -}}
{{- $_ := set $env "MODEL_REGISTRY_ENABLED" (toString $flags.modelRegistry) -}}
{{- $_ := set $env "DATA_VERSIONING_ENABLED" (toString $flags.dataVersioning) -}}
{{- $_ := set $secrets "DATABASE_URL" (dict "secret" $v.postgresql.existingSecret "key" $v.postgresql.urlKey) -}}
{{- $_ := set $secrets "API_KEYS" (dict "secret" $svc.apiKeys.existingSecret "key" $svc.apiKeys.key) -}}
{{- if $v.oidc.issuer -}}
{{- $_ := set $env "OIDC_ISSUER" $v.oidc.issuer -}}
{{- $_ := set $env "OIDC_AUDIENCE" (required "oidc.audience is required with oidc.issuer" $v.oidc.audience) -}}
{{- $_ := set $env "OIDC_ROLES_CLAIM" $v.oidc.rolesClaim -}}
{{- $_ := set $env "OIDC_ROLE_MAP" (toJson $v.oidc.roleMap) -}}
{{- $_ := set $env "OIDC_SUBJECT_CLAIM" $v.oidc.subjectClaim -}}
{{- end -}}
{{- if $v.openlineage.url -}}
{{- $_ := set $env "OPENLINEAGE_URL" $v.openlineage.url -}}
{{- $_ := set $env "OPENLINEAGE_NAMESPACE" $v.openlineage.namespace -}}
{{- if $v.openlineage.apiKey.existingSecret -}}
{{- $_ := set $secrets "OPENLINEAGE_API_KEY" (dict "secret" $v.openlineage.apiKey.existingSecret "key" $v.openlineage.apiKey.key) -}}
{{- end -}}
{{- end -}}
{{- if $v.console.argoUrl -}}
{{- $_ := set $env "CONSOLE_ARGO_URL" $v.console.argoUrl -}}
{{- end -}}
{{- if $v.console.gitCommitUrl -}}
{{- $_ := set $env "CONSOLE_GIT_COMMIT_URL" $v.console.gitCommitUrl -}}
{{- end -}}
{{- else -}}
{{- $_ := set $env "HEALTH_PORT" (toString $svc.port) -}}
{{- end -}}
{{- if eq $name "tracking" -}}
{{- $_ := set $env "EXPERIMENT_TRACKING_ENABLED" (toString $flags.experimentTracking) -}}
{{- $_ := set $env "MLFLOW_TRACKING_URI" $v.mlflow.trackingUri -}}
{{- if $v.mlflow.uiUrl -}}
{{- $_ := set $env "MLFLOW_UI_URL" $v.mlflow.uiUrl -}}
{{- end -}}
{{- $_ := set $env "MLFLOW_WEBHOOK_URL" (printf "http://%s.%s.svc:%v/mlflow/webhook" (include "llmops.component" .) $root.Release.Namespace $svc.port) -}}
{{- $_ := set $env "MLFLOW_WEBHOOK_NAME" (default (printf "llmops-%s-model-versions" $v.environment) $v.mlflow.webhook.name) -}}
{{- $_ := set $secrets "MLFLOW_WEBHOOK_SECRET" (dict "secret" $v.mlflow.webhook.existingSecret "key" $v.mlflow.webhook.key) -}}
{{- end -}}
{{- if eq $name "serving" -}}
{{- $_ := set $env "SERVING_FRAMEWORK_ENABLED" (toString $flags.servingFramework) -}}
{{- $_ := set $env "SERVING_BACKEND" (ternary "kserve" "deployment" $flags.servingFramework) -}}
{{- $_ := set $env "WATCH_ENVIRONMENTS" (toJson $svc.environments) -}}
{{- $_ := set $env "MANIFESTS_DIR" "/data/manifests" -}}
{{- end -}}
{{- if eq $name "workflow" -}}
{{- $_ := set $env "WORKFLOW_ORCHESTRATION_ENABLED" (toString $flags.workflowOrchestration) -}}
{{- $_ := set $env "WORKFLOW_BACKEND" (ternary "argo" "job" $flags.workflowOrchestration) -}}
{{- $_ := set $env "ARGO_NAMESPACE" (include "llmops.workflowNamespace" $root) -}}
{{- $_ := set $env "MLFLOW_TRACKING_URI" $v.mlflow.trackingUri -}}
{{- $_ := set $env "MANIFESTS_DIR" "/data/workflows" -}}
{{- end -}}
{{- if eq $name "registry" -}}
{{- $_ := set $env "HUGGINGFACE_HUB_CACHE_DIR" "/data/hf-cache" -}}
{{- $_ := set $env "MODEL_STORE_DIR" "/data/models" -}}
{{- end -}}
{{- if eq $name "versioning" -}}
{{- $_ := set $env "DATA_VERSIONING_ENABLED" (toString $flags.dataVersioning) -}}
{{- $_ := set $env "DVC_REPOS_DIR" "/data/repos" -}}
{{- $_ := set $env "BUILTIN_STORE_DIR" "/data/builtin" -}}
{{- end -}}
{{- if eq $name "github-sync" -}}
{{- $_ := set $env "MLFLOW_TRACKING_URI" $v.mlflow.trackingUri -}}
{{- $_ := set $env "GITHUB_SYNC_WORK_DIR" "/data/github-sync" -}}
{{- $gateway := $v.services.gateway -}}
{{- $_ := set $secrets "API_KEYS" (dict "secret" $gateway.apiKeys.existingSecret "key" $gateway.apiKeys.key) -}}
{{- end -}}
{{- if and $v.mlflow.credentials.existingSecret (has $name (list "tracking" "github-sync")) -}}
{{- range $key, $variable := dict "username" "MLFLOW_TRACKING_USERNAME" "password" "MLFLOW_TRACKING_PASSWORD" "token" "MLFLOW_TRACKING_TOKEN" -}}
{{- $_ := set $secrets $variable (dict "secret" $v.mlflow.credentials.existingSecret "key" $key "optional" true) -}}
{{- end -}}
{{- end -}}
{{- range $key, $value := $svc.env -}}
{{- $_ := set $env $key (toString $value) -}}
{{- end -}}
{{- range $key, $ref := $svc.secretEnv -}}
{{- $_ := set $secrets $key $ref -}}
{{- end -}}
{{- range $key := keys $env | sortAlpha }}
{{- if not (hasKey $secrets $key) }}
- name: {{ $key }}
  value: {{ index $env $key | quote }}
{{- end }}
{{- end }}
{{- range $key := keys $secrets | sortAlpha }}
{{- $ref := index $secrets $key }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.secret }}
      key: {{ $ref.key }}
      {{- if $ref.optional }}
      optional: true
      {{- end }}
{{- end }}
{{- end -}}
