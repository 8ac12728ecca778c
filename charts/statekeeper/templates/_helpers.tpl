{{/*
Chart name, truncated to 63 characters (the DNS label limit of most names).
*/}}
{{- define "statekeeper.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name, truncated to 63 characters. When the release name
already contains the chart name it is used alone ("statekeeper", not
"statekeeper-statekeeper").
*/}}
{{- define "statekeeper.fullname" -}}
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
A name derived from the fullname with a suffix; the fullname is shortened so
that the suffix always survives the 63-character limit.
Usage: include "statekeeper.suffixedName" (list . "webhook")
*/}}
{{- define "statekeeper.suffixedName" -}}
{{- $root := index . 0 }}
{{- $suffix := index . 1 }}
{{- $max := sub 62 (len $suffix) | int }}
{{- printf "%s-%s" (include "statekeeper.fullname" $root | trunc $max | trimSuffix "-") $suffix }}
{{- end }}

{{/*
Chart label value: name-version.
*/}}
{{- define "statekeeper.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "statekeeper.labels" -}}
helm.sh/chart: {{ include "statekeeper.chart" . }}
{{ include "statekeeper.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: statekeeper
{{- end }}

{{/*
Selector labels: stable for the life of a release.
*/}}
{{- define "statekeeper.selectorLabels" -}}
app.kubernetes.io/name: {{ include "statekeeper.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount the server runs as.
*/}}
{{- define "statekeeper.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "statekeeper.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The Service the API server calls the webhooks through.
*/}}
{{- define "statekeeper.webhookServiceName" -}}
{{- include "statekeeper.suffixedName" (list . "webhook") }}
{{- end }}

{{/*
The Service that exposes Prometheus metrics.
*/}}
{{- define "statekeeper.metricsServiceName" -}}
{{- include "statekeeper.suffixedName" (list . "metrics") }}
{{- end }}

{{/*
The Secret holding the serving certificate (tls.crt, tls.key).
*/}}
{{- define "statekeeper.tlsSecretName" -}}
{{- default (include "statekeeper.suffixedName" (list . "tls")) .Values.tls.secretName }}
{{- end }}

{{/*
cert-manager object names.
*/}}
{{- define "statekeeper.servingCertificateName" -}}
{{- include "statekeeper.suffixedName" (list . "serving-cert") }}
{{- end }}
{{- define "statekeeper.selfSignedIssuerName" -}}
{{- include "statekeeper.suffixedName" (list . "selfsigned") }}
{{- end }}
{{- define "statekeeper.caCertificateName" -}}
{{- include "statekeeper.suffixedName" (list . "ca") }}
{{- end }}
{{- define "statekeeper.caIssuerName" -}}
{{- include "statekeeper.suffixedName" (list . "ca-issuer") }}
{{- end }}

{{/*
Namespaces statekeeper never sees: the configured ones plus its own, so that
it can never block the creation of its own pods. Comma-separated, as the
--excluded-namespaces flag takes them; the webhooks' namespaceSelector splits
the same list.
*/}}
{{- define "statekeeper.excludedNamespaces" -}}
{{- append .Values.webhook.excludedNamespaces .Release.Namespace | uniq | join "," }}
{{- end }}

{{/*
The Certificate whose CA cert-manager's cainjector writes into the webhook
configurations ("<namespace>/<name>"), or nothing when the CA bundle is given
explicitly (the injector would overwrite it) or cert-manager is not used.
*/}}
{{- define "statekeeper.caInjectionFrom" -}}
{{- if and (eq .Values.tls.mode "cert-manager") (not .Values.webhook.caBundle) }}
{{- printf "%s/%s" .Release.Namespace (include "statekeeper.servingCertificateName" .) }}
{{- end }}
{{- end }}

{{/*
clientConfig of one webhook. Usage: include "statekeeper.clientConfig" (list . "/mutate")
A base URL in webhook.url points at a local process; otherwise the API server
calls the chart's Service.
*/}}
{{- define "statekeeper.clientConfig" -}}
{{- $root := index . 0 }}
{{- $path := index . 1 -}}
clientConfig:
  {{- if $root.Values.webhook.url }}
  url: {{ printf "%s%s" (trimSuffix "/" $root.Values.webhook.url) $path | quote }}
  {{- else }}
  service:
    name: {{ include "statekeeper.webhookServiceName" $root }}
    namespace: {{ $root.Release.Namespace }}
    path: {{ $path }}
    port: 443
  {{- end }}
  {{- with $root.Values.webhook.caBundle }}
  caBundle: {{ . }}
  {{- end }}
{{- end }}

{{/*
Modes in which statekeeper never denies (warn: admits with the violation as a
warning; audit: admits unchanged and records), as a JSON list. Their
namespaces get webhook entries of their own that fail open, so that an outage
of statekeeper never blocks a write there. A new mode that never denies
belongs here and nowhere else.
*/}}
{{- define "statekeeper.warnModes" -}}
{{- list "warn" "audit" | toJson }}
{{- end }}

{{/*
The mode groups each webhook has an entry for, as a JSON list:
  enforce       namespaces where statekeeper denies (failure policy from values)
  warn          namespaces labelled with a warn mode, warn or audit (failure
                policy Ignore)
  warn-default  unlabelled namespaces, when the default mode is a warn mode
                (Ignore); only then, because a selector cannot say "labelled
                warn or unlabelled" in one entry.
Every namespace in scope matches exactly one group; off namespaces none.
*/}}
{{- define "statekeeper.modeGroups" -}}
{{- /* warn-default is always rendered (matching nothing unless the default
  mode is a warn mode): cert-manager's CA injector co-owns each entry's
  caBundle through server-side apply, so an entry Helm stops rendering would
  stay behind, invalid, and fail the upgrade. */}}
{{- list "enforce" "warn" "warn-default" | toJson }}
{{- end }}

{{/*
A webhook entry's name in a mode group: the enforce entry keeps the plain name
(workloads.validate.statekeeper.io), the others add the group
(workloads-warn.validate.statekeeper.io).
Usage: include "statekeeper.webhookName" (list "workloads" "validate" "warn")
*/}}
{{- define "statekeeper.webhookName" -}}
{{- $what := index . 0 }}
{{- $group := index . 2 }}
{{- if ne $group "enforce" }}
{{- $what = printf "%s-%s" $what $group }}
{{- end }}
{{- printf "%s.%s.statekeeper.io" $what (index . 1) }}
{{- end }}

{{/*
A webhook entry's failure policy in a mode group: the configured one where
statekeeper enforces; Ignore where it only warns, so that an outage of
statekeeper never blocks a write in a warn namespace.
Usage: include "statekeeper.failurePolicy" (list "warn" .Values.webhook.failurePolicy.workloads)
*/}}
{{- define "statekeeper.failurePolicy" -}}
{{- if eq (index . 0) "enforce" }}
{{- index . 1 }}
{{- else -}}
Ignore
{{- end }}
{{- end }}

{{/*
Fields shared by every webhook: scope, protocol and timeout, and the
namespaces of one mode group (see statekeeper.modeGroups), or of "all" modes
but off (the pod webhook, which behaves the same in every mode).
Usage: include "statekeeper.webhookCommon" (list . "enforce"), or with an
entry's own timeout: (list . "all" .Values.webhook.unlabelledTimeoutSeconds)
An unknown mode label is enforced (docs/spec.md §6), so the enforce group is "not off
and not a warn mode", narrowed to labelled namespaces when unlabelled ones
default to another mode.
*/}}
{{- define "statekeeper.webhookCommon" -}}
{{- $root := index . 0 }}
{{- $group := index . 1 }}
{{- $timeout := $root.Values.webhook.timeoutSeconds }}
{{- if gt (len .) 2 }}{{ $timeout = index . 2 }}{{ end }}
{{- $warnModes := include "statekeeper.warnModes" $root | fromJsonArray -}}
{{ include "statekeeper.webhookProtocol" $timeout }}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values:
        {{- range splitList "," (include "statekeeper.excludedNamespaces" $root) }}
        - {{ . | quote }}
        {{- end }}
    {{- if eq $group "enforce" }}
    - key: statekeeper.io/mode
      operator: NotIn
      values: {{ prepend $warnModes "off" | toJson }}
    {{- if ne $root.Values.config.defaultMode "enforce" }}
    - key: statekeeper.io/mode
      operator: Exists
    {{- end }}
    {{- else if eq $group "warn" }}
    - key: statekeeper.io/mode
      operator: In
      values: {{ $warnModes | toJson }}
    {{- else if eq $group "warn-default" }}
    - key: statekeeper.io/mode
      operator: DoesNotExist
    {{- if not (has $root.Values.config.defaultMode $warnModes) }}
    - key: statekeeper.io/mode
      operator: Exists
    {{- end }}
    {{- else if eq $group "all" }}
    - key: statekeeper.io/mode
      operator: NotIn
      values: ["off"]
    {{- if eq $root.Values.config.defaultMode "off" }}
    - key: statekeeper.io/mode
      operator: Exists
    {{- end }}
    {{- else }}
    {{- fail (printf "unknown webhook mode group %q" $group) }}
    {{- end }}
{{- end }}

{{/*
The protocol fields of a webhook entry, with its timeout in seconds.
Usage: include "statekeeper.webhookProtocol" .Values.webhook.timeoutSeconds
*/}}
{{- define "statekeeper.webhookProtocol" -}}
admissionReviewVersions: ["v1"]
sideEffects: None
matchPolicy: Equivalent
timeoutSeconds: {{ . }}
{{- end }}

{{/*
The reviewed namespaces: not excluded, not off. With protectedOnly, only
those labelled statekeeper.io/protect: "true" (deletion protection).
*/}}
{{- define "statekeeper.namespaceSelector" -}}
{{- $ := index . 0 -}}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values:
        {{- range splitList "," (include "statekeeper.excludedNamespaces" $) }}
        - {{ . | quote }}
        {{- end }}
    - key: statekeeper.io/mode
      operator: NotIn
      values: ["off"]
    {{- if index . 1 }}
    - key: statekeeper.io/protect
      operator: In
      values: ["true"]
    {{- end }}
{{- end }}

{{/*
CEL over a workload, the variable named by the argument (object or oldObject):
true when it carries statekeeper.io/deploy-type on itself or on its pod
template, which is what makes statekeeper manage it (a key the workload lacks
is read from its pod template: policy.EffectiveKeys). A null variable (object
on DELETE, oldObject on CREATE) carries nothing. Every field is tested with
has() before it is read: an evaluation error in an entry that fails closed
would refuse the write.
Usage: include "statekeeper.managedExpression" "object"
*/}}
{{- define "statekeeper.managedExpression" -}}
{{- $labels := printf "%s.metadata.labels" . -}}
{{- $templateLabels := printf "%s.spec.template.metadata.labels" . -}}
({{ . }} != null && (
(has({{ . }}.metadata) && has({{ $labels }}) && 'statekeeper.io/deploy-type' in {{ $labels }}) ||
(has({{ . }}.spec) && has({{ . }}.spec.template) && has({{ . }}.spec.template.metadata) &&
has({{ $templateLabels }}) && 'statekeeper.io/deploy-type' in {{ $templateLabels }})))
{{- end }}

{{/*
Routing of the workload entries. None has an objectSelector: one sees only
the object's own labels, so it would keep away a workload labelled only on
its pod template (what charts' podLabels give), and narrowing further than
the match conditions below gains nothing, as they are exact:
  managed (CREATE, UPDATE)  the new or the old object is managed, as an
                            objectSelector matches either: an UPDATE that
                            removes the type is still judged (type-change)
  unmanaged (CREATE)        exactly the complement on CREATE, for the
                            unlabelled entry, which fails open: an outage
                            never blocks a workload statekeeper does not manage
  deleted (DELETE)          the object being deleted is managed
Usage: include "statekeeper.workloadMatchCondition" "managed"
*/}}
{{- define "statekeeper.workloadMatchCondition" -}}
{{- if eq . "managed" -}}
- name: managed-workload
  expression: >-
    {{- include "statekeeper.managedExpression" "object" | nindent 4 }} ||
    {{- include "statekeeper.managedExpression" "oldObject" | nindent 4 }}
{{- else if eq . "unmanaged" -}}
- name: unmanaged-workload
  expression: >-
    !{{ include "statekeeper.managedExpression" "object" | nindent 4 }}
{{- else if eq . "deleted" -}}
- name: managed-workload
  expression: >-
    {{- include "statekeeper.managedExpression" "oldObject" | nindent 4 }}
{{- else }}
{{- fail (printf "unknown workload match condition %q" .) }}
{{- end }}
{{- end }}

{{/*
CEL over the workload being deleted: annotated statekeeper.io/protect: "true",
on itself or, when it has no such annotation, on its pod template (the
workload's own annotation wins, as policy.EffectiveKeys decides). Guarded with
has() as statekeeper.managedExpression is.
*/}}
{{- define "statekeeper.protectedExpression" -}}
{{- $own := "oldObject.metadata.annotations" -}}
{{- $template := "oldObject.spec.template.metadata.annotations" -}}
(oldObject != null && (
has(oldObject.metadata) && has({{ $own }}) && 'statekeeper.io/protect' in {{ $own }}
? {{ $own }}['statekeeper.io/protect'] == 'true'
: has(oldObject.spec) && has(oldObject.spec.template) && has(oldObject.spec.template.metadata) &&
has({{ $template }}) && 'statekeeper.io/protect' in {{ $template }} && {{ $template }}['statekeeper.io/protect'] == 'true'))
{{- end }}

{{/*
Values the schema cannot refuse, checked once for every render at the top of
the templates that need them, with a message naming the value.
*/}}
{{- define "statekeeper.validateValues" -}}
{{- if eq .Values.tls.mode "secret" }}
{{- $_ := required "tls.mode=secret needs webhook.caBundle: the base64-encoded PEM CA that signed the certificate in the Secret tls.secretName" .Values.webhook.caBundle }}
{{- end }}
{{- /* --set key=null deletes the key before the schema sees the values. */}}
{{- if not (kindIs "slice" .Values.webhook.excludedNamespaces) }}
{{- fail "webhook.excludedNamespaces must be a list of namespace names (use [] for none besides the release namespace, which is always excluded); null removes the chart's default list" }}
{{- end }}
{{- end }}

{{/*
The CA Certificate's commonName: "<fullname> CA", the fullname shortened so
the whole stays within the 64 characters cert-manager's webhook allows.
*/}}
{{- define "statekeeper.caCommonName" -}}
{{- printf "%s CA" (include "statekeeper.fullname" . | trunc 61 | trimSuffix "-") }}
{{- end }}

{{/*
The host of webhook.url without port or IPv6 brackets, or nothing: with
cert-manager TLS the serving certificate must name it, as the API server
verifies the certificate against the URL it calls.
*/}}
{{- define "statekeeper.webhookURLHost" -}}
{{- with .Values.webhook.url }}
{{- regexReplaceAll ":[0-9]+$" (urlParse .).host "" | trimPrefix "[" | trimSuffix "]" }}
{{- end }}
{{- end }}

{{/*
GOMEMLIMIT for the container: 90 % of resources.limits.memory in bytes, so
that the Go runtime collects harder as the heap nears the limit instead of
the container being OOM-killed; the rest is headroom for what the runtime
does not count (binary, thread stacks outside the heap). Empty without a
memory limit. values.schema.json admits the suffixes handled here (not
exponents such as "5e8", nor milli-bytes).
*/}}
{{- define "statekeeper.goMemLimit" -}}
{{- $limit := dig "limits" "memory" "" (.Values.resources | default dict) }}
{{- if or (kindIs "float64" $limit) (kindIs "int64" $limit) }}
{{- mulf $limit 0.9 | floor | int64 }}
{{- else if $limit }}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" $limit }}
{{- $unit := trimPrefix $number $limit }}
{{- $factors := dict "" 1 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 }}
{{- mulf (float64 $number) (index $factors $unit) 0.9 | floor | int64 }}
{{- end }}
{{- end }}

{{/*
"true" when the chart renders its ValidatingAdmissionPolicy (validatingadmissionpolicy.yaml,
generated from the catalog): enabled, and served by the API server (1.30+).
*/}}
{{- define "statekeeper.admissionPoliciesRendered" -}}
{{- if and .Values.admissionPolicies.enabled (.Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy") }}true{{ end }}
{{- end }}

{{/*
"true" when the chart renders the MutatingAdmissionPolicy: policies enabled
and the API server serves it (admissionregistration.k8s.io/v1, Kubernetes 1.36).
*/}}
{{- define "statekeeper.mutatingAdmissionPolicyRendered" -}}
{{- if and .Values.admissionPolicies.enabled (.Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy") }}true{{ end }}
{{- end }}

{{/*
CEL, true when the keys under statekeeper.io/ of one map (the path after
"object.", optional-chained) are the same in object and oldObject. One line:
it is included into folded YAML scalars.
Usage: include "statekeeper.keysUnchanged" "metadata.?labels"
*/}}
{{- define "statekeeper.keysUnchanged" -}}
{{- $new := printf "object.%s.orValue({})" . -}}
{{- $old := printf "oldObject.%s.orValue({})" . -}}
({{ $new }}.all(k, !k.startsWith('statekeeper.io/') || (k in {{ $old }} && {{ $old }}[k] == {{ $new }}[k])) && {{ $old }}.all(k, !k.startsWith('statekeeper.io/') || k in {{ $new }}))
{{- end }}

{{/*
With the admission policies in place, the match condition that keeps from the
workload entries the UPDATEs the policy alone decides: those that change
nothing a rule needing a lookup (type-change, headless-conflict,
storage-resize, the claim and strategy warnings) or a mutation reads: the keys
under statekeeper.io/ (workload and pod template), strategy, serviceName,
claim templates, pod volumes and volume mounts, and for the validating entry
replicas (the claim warning reads them; no mutation does, so a scale-up by
UPDATE meets the policy, not a mutating entry that fails closed while
statekeeper is down). An image bump, a rollout restart or another annotation
is then never sent, so it goes through while statekeeper is down. The mutating
entry keeps the UPDATEs whose carry-overs matter: an incoming object that
lacks the stored serviceName, claim templates or template label differs there.
Usage: include "statekeeper.updateMatchCondition" (list . "validate")
*/}}
{{- define "statekeeper.updateMatchCondition" -}}
{{- $root := index . 0 }}
{{- if include "statekeeper.admissionPoliciesRendered" $root -}}
- name: update-needs-statekeeper
  expression: >-
    oldObject == null || !(
    {{ include "statekeeper.keysUnchanged" "metadata.?labels" }} &&
    {{ include "statekeeper.keysUnchanged" "metadata.?annotations" }} &&
    {{ include "statekeeper.keysUnchanged" "spec.?template.?metadata.?labels" }} &&
    {{ include "statekeeper.keysUnchanged" "spec.?template.?metadata.?annotations" }} &&
    {{- if eq (index . 1) "validate" }}
    object.spec.?replicas == oldObject.spec.?replicas &&
    {{- end }}
    object.spec.?strategy == oldObject.spec.?strategy &&
    object.spec.?serviceName == oldObject.spec.?serviceName &&
    object.spec.?volumeClaimTemplates == oldObject.spec.?volumeClaimTemplates &&
    object.spec.?template.?spec.?volumes == oldObject.spec.?template.?spec.?volumes &&
    object.spec.?template.?spec.?containers.orValue([]).map(c, c.?volumeMounts.orValue([])) ==
    oldObject.spec.?template.?spec.?containers.orValue([]).map(c, c.?volumeMounts.orValue([])) &&
    object.spec.?template.?spec.?initContainers.orValue([]).map(c, c.?volumeMounts.orValue([])) ==
    oldObject.spec.?template.?spec.?initContainers.orValue([]).map(c, c.?volumeMounts.orValue([])))
{{- end }}
{{- end }}
