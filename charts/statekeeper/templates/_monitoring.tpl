{{/*
The label matchers of the series the ServiceMonitor scrapes from this
release: prometheus-operator names the job after the metrics Service.
*/}}
{{- define "statekeeper.metricsSelector" -}}
job="{{ include "statekeeper.metricsServiceName" . }}", namespace="{{ .Release.Namespace }}"
{{- end }}

{{/*
A Go duration of the schema's form ("360h", "1h30m", "90s", "500ms") in
seconds, for PromQL: older Prometheus servers take no duration literal where
a number goes.
*/}}
{{- define "statekeeper.durationSeconds" -}}
{{- $seconds := 0.0 }}
{{- $units := dict "h" 3600.0 "m" 60.0 "s" 1.0 "ms" 0.001 }}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(ms|h|m|s)" . -1 }}
{{- $unit := regexFind "(ms|h|m|s)$" . }}
{{- $seconds = addf $seconds (mulf (float64 (trimSuffix $unit .)) (get $units $unit)) }}
{{- end }}
{{- printf "%.0f" $seconds }}
{{- end }}

{{/*
What the API server refuses while no replica answers: the entries that
fail closed (webhook.failurePolicy), or "" when every one fails open.
*/}}
{{- define "statekeeper.blockedWhileDown" -}}
{{- $blocked := list }}
{{- with .Values.webhook.failurePolicy }}
{{- if eq .workloads "Fail" }}{{ $blocked = append $blocked "creates and updates of managed Deployments and StatefulSets" }}{{ end }}
{{- if eq .scaling "Fail" }}{{ $blocked = append $blocked "scaling managed workloads past one replica (/scale, HorizontalPodAutoscalers)" }}{{ end }}
{{- if eq .deletions "Fail" }}{{ $blocked = append $blocked "deletions of protected workloads" }}{{ end }}
{{- end }}
{{- join "; " $blocked }}
{{- end }}

{{/*
A runbook section of docs/monitoring.md.
*/}}
{{- define "statekeeper.runbook" -}}
{{ .root.Chart.Home }}/blob/main/docs/monitoring.md#{{ .alert | lower }}
{{- end }}
