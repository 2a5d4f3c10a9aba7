{{/*
The release's full name: the release name, with the chart's name added unless it is in it.
*/}}
{{- define "mk.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "mk.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" -}}
{{- end -}}

{{- define "mk.serviceAccountName" -}}
{{- default (include "mk.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/*
Every deployable the chart knows: its values key, its name (images, resources, the
component label), the Python package it runs, its settings' environment prefix and its kind
(gateway, service: has a database, Kafka and migrations; frontend). The prefixes and
packages are the code's own (each config.py), not settings.
*/}}
{{- define "mk.allComponents" -}}
- {key: gateway, name: gateway, package: gateway, prefix: GATEWAY_, kind: gateway, seedData: false}
- {key: citizenServices, name: citizen-services, package: citizen_services, prefix: CITIZEN_SERVICES_, kind: service, seedData: true}
- {key: inclusion, name: inclusion, package: inclusion, prefix: INCLUSION_, kind: service, seedData: true}
- {key: notifications, name: notifications, package: notifications, prefix: NOTIFICATIONS_, kind: service, seedData: false}
- {key: citizenPortal, name: citizen-portal, package: citizen_portal, prefix: CITIZEN_PORTAL_, kind: frontend, seedData: false}
- {key: staffConsole, name: staff-console, package: staff_console, prefix: STAFF_CONSOLE_, kind: frontend, seedData: false}
{{- end -}}

{{/*
The enabled components, each with its values under `values`: a YAML list for fromYamlArray.
The gateway and the three services are always deployed; a front-end when enabled.
*/}}
{{- define "mk.components" -}}
{{- $out := list -}}
{{- range $c := include "mk.allComponents" . | fromYamlArray -}}
{{- $v := dict -}}
{{- if eq $c.kind "frontend" -}}
{{- $v = index $.Values.frontends $c.key -}}
{{- else -}}
{{- $v = index $.Values $c.key -}}
{{- end -}}
{{- if or (ne $c.kind "frontend") $v.enabled -}}
{{- $out = append $out (merge (dict "values" $v) $c) -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{- define "mk.labels" -}}
helm.sh/chart: {{ include "mk.chart" .root }}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: mk-platform
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "mk.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "mk.resourceName" -}}
{{- printf "%s-%s" (include "mk.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The image of a component: <registry>/<prefix>/<name>:<tag>, or @digest when given. */}}
{{- define "mk.image" -}}
{{- $img := .root.Values.image -}}
{{- $tag := default .root.Chart.AppVersion $img.tag -}}
{{- if eq $tag "latest" -}}
{{- fail "image.tag must be a version, not latest" -}}
{{- end -}}
{{- printf "%s/%s/%s:%s" $img.registry $img.repositoryPrefix .name $tag -}}
{{- end -}}

{{/* The Secret a component's secrets come from. */}}
{{- define "mk.secretName" -}}
{{- default (include "mk.resourceName" .) .values.existingSecret -}}
{{- end -}}

{{/*
The environment of a component's container (and of its migration job): where it listens,
the environment name, the identity secret, the database and Kafka, then `secretEnv` (from
its Secret) and `env` (plain values).
*/}}
{{- define "mk.env" -}}
{{- $root := .root -}}
{{- $c := .c -}}
{{- $p := $c.prefix -}}
- name: {{ $p }}ENVIRONMENT
  value: {{ $root.Values.environment | quote }}
- name: {{ $p }}LOG_LEVEL
  value: {{ $root.Values.logLevel | quote }}
- name: {{ $p }}HOST
  value: "0.0.0.0"
- name: {{ $p }}PORT
  value: {{ $c.values.service.port | quote }}
- name: PLATFORM_IDENTITY_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.identity.existingSecret }}
      key: {{ $root.Values.identity.key }}
{{- with $root.Values.otel.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- if eq $c.kind "service" }}
- name: {{ $p }}RUN_MIGRATIONS
  value: {{ not $root.Values.migrations.enabled | quote }}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ required "kafka.bootstrapServers is required (host:port of the existing Kafka cluster)" $root.Values.kafka.bootstrapServers | quote }}
{{- $k := $root.Values.kafka }}
- name: {{ $p }}KAFKA_SECURITY_PROTOCOL
  value: {{ $k.securityProtocol | quote }}
{{- if hasPrefix "SASL_" $k.securityProtocol }}
- name: {{ $p }}KAFKA_SASL_MECHANISM
  value: {{ required "kafka.sasl.mechanism is required with a SASL_ security protocol" $k.sasl.mechanism | quote }}
- name: {{ $p }}KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ required "kafka.sasl.existingSecret is required with a SASL_ security protocol" $k.sasl.existingSecret }}
      key: {{ $k.sasl.usernameKey }}
- name: {{ $p }}KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $k.sasl.existingSecret }}
      key: {{ $k.sasl.passwordKey }}
{{- end }}
{{- if $k.tls.caSecret }}
- name: {{ $p }}KAFKA_SSL_CAFILE
  value: /etc/mk/kafka/ca/{{ $k.tls.caKey }}
{{- end }}
{{- if $k.tls.clientCertSecret }}
- name: {{ $p }}KAFKA_SSL_CERTFILE
  value: /etc/mk/kafka/client/tls.crt
- name: {{ $p }}KAFKA_SSL_KEYFILE
  value: /etc/mk/kafka/client/tls.key
{{- end }}
{{- end }}
{{- if eq $c.kind "gateway" }}
{{- range $s := include "mk.components" $root | fromYamlArray }}
{{- if eq $s.kind "service" }}
- name: GATEWAY_{{ $s.prefix }}URL
  value: "http://{{ include "mk.resourceName" (dict "root" $root "name" $s.name) }}:{{ $s.values.service.port }}"
{{- end }}
{{- end }}
{{- with $root.Values.redis.existingSecret }}
- name: GATEWAY_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $root.Values.redis.urlKey }}
{{- end }}
{{- end }}
{{- if eq $c.kind "frontend" }}
- name: {{ $p }}GATEWAY_URL
  value: "http://{{ include "mk.resourceName" (dict "root" $root "name" "gateway") }}:{{ $root.Values.gateway.service.port }}"
{{- end }}
{{- $secret := include "mk.secretName" (dict "root" $root "name" $c.name "values" $c.values) }}
{{- range $e := $c.values.secretEnv }}
- name: {{ $e.name }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ $e.key }}
      {{- if $e.optional }}
      optional: true
      {{- end }}
{{- end }}
{{- range $name, $value := $c.values.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* Volumes: a writable /tmp and, for the services, the Kafka CA and client certificate. */}}
{{- define "mk.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .root.Values.tmpSizeLimit }}
{{- if eq .c.kind "service" }}
{{- with .root.Values.kafka.tls.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ . }}
{{- end }}
{{- with .root.Values.kafka.tls.clientCertSecret }}
- name: kafka-client
  secret:
    secretName: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "mk.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if eq .c.kind "service" }}
{{- if .root.Values.kafka.tls.caSecret }}
- name: kafka-ca
  mountPath: /etc/mk/kafka/ca
  readOnly: true
{{- end }}
{{- if .root.Values.kafka.tls.clientCertSecret }}
- name: kafka-client
  mountPath: /etc/mk/kafka/client
  readOnly: true
{{- end }}
{{- end }}
{{- end -}}

{{/* NetworkPolicy egress to a dependency: its ports, to its peers (any when none listed). */}}
{{- define "mk.egressRule" -}}
- ports:
  {{- range .ports }}
  - port: {{ . }}
    protocol: TCP
  {{- end }}
  {{- with .to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
