{{/*
Alert rules shared by the PrometheusRule and the VMRule (both read spec.groups[].rules[] with alert, expr,
for, labels, annotations). Metric names: src/server/metrics.rs. `{{ "{{" }} ... {{ "}}" }}` is left for
the alerting engine's own templating.
*/}}
{{- define "regate.alertGroups" -}}
{{- $sel := printf "namespace=%q" .Release.Namespace -}}
{{- $a := .Values.metrics.alerts -}}
groups:
  - name: regate
    rules:
      - alert: RegateAdmissionErrorRate
        expr: |
          (
            sum(rate(regate_overload_rejections_total{ {{- $sel -}} }[5m]))
            + sum(rate(regate_evaluation_deadline_exceeded_total{ {{- $sel -}} }[5m]))
            + sum(rate(regate_cluster_state_unavailable_total{ {{- $sel -}} }[5m]))
          )
          /
          (
            sum(rate(regate_admission_requests_total{ {{- $sel -}} }[5m]))
            + sum(rate(regate_overload_rejections_total{ {{- $sel -}} }[5m]))
          ) > {{ $a.errorRatio }}
        for: 10m
        labels:
          severity: critical
        annotations:
          summary: regate fails more than {{ mulf $a.errorRatio 100 }}% of admission reviews
          description: >-
            Reviews shed as overloaded, answered at the deadline, or decided without cluster state:
            {{ "{{" }} $value | humanizePercentage {{ "}}" }} over 5 minutes. With failurePolicy Fail the
            API server rejects the affected requests.
      - alert: RegateAdmissionLatencyHigh
        expr: |
          histogram_quantile(0.99,
            sum by (le, endpoint) (rate(regate_admission_request_duration_seconds_bucket{ {{- $sel -}} }[5m]))
          ) > {{ $a.p99LatencySeconds }}
        for: 10m
        labels:
          severity: warning
        annotations:
          summary: regate p99 admission latency above {{ $a.p99LatencySeconds }}s
          description: >-
            p99 of {{ "{{" }} $labels.endpoint {{ "}}" }} is {{ "{{" }} $value | humanizeDuration {{ "}}" }}; the
            webhook timeout is {{ .Values.webhook.timeoutSeconds }}s.
      - alert: RegatePolicyReloadFailing
        expr: increase(regate_bundle_reload_failures_total{ {{- $sel -}} }[15m]) > 0
        labels:
          severity: warning
        annotations:
          summary: regate rejected a changed policy bundle
          description: >-
            {{ "{{" }} $labels.pod {{ "}}" }} keeps serving its last good bundle; the logs list every
            problem as file:line:col (policy bundle problem).
      - alert: RegateCertificateExpiringSoon
        expr: |
          (regate_certificate_expiry_timestamp_seconds{ {{- $sel -}} } - time()) < {{ mul $a.certificateExpiryDays 86400 }}
        for: 15m
        labels:
          severity: critical
        annotations:
          summary: regate serving certificate expires within {{ $a.certificateExpiryDays }} days
          description: >-
            {{ "{{" }} $labels.pod {{ "}}" }} serves a certificate expiring in
            {{ "{{" }} $value | humanizeDuration {{ "}}" }}; check the cert-manager Certificate and
            regate_certificate_reload_failures_total.
      - alert: RegateNotReady
        expr: max_over_time(regate_ready{ {{- $sel -}} }[5m]) == 0
        for: 5m
        labels:
          severity: warning
        annotations:
          summary: a regate pod has not been ready for 10 minutes
          description: >-
            {{ "{{" }} $labels.pod {{ "}}" }}: policies, certificate or cluster state not loaded
            (regate_cluster_state_synced, /readyz reasons).
      {{- if .Values.audit.enabled }}
      - alert: RegateAuditStale
        expr: |
          time() - max(regate_audit_last_success_timestamp_seconds{ {{- $sel -}} }) > {{ $a.auditStaleSeconds }}
        for: 15m
        labels:
          severity: warning
        annotations:
          summary: no complete background audit for {{ $a.auditStaleSeconds }} seconds
          description: >-
            The policy reports and regate_audit_violations describe the cluster as it was at the last
            complete audit. See the auditing replica's logs (audit failed, audit incomplete).
      - alert: RegateAuditNoLeader
        expr: sum(regate_audit_leader{ {{- $sel -}} }) == 0
        for: 15m
        labels:
          severity: warning
        annotations:
          summary: no regate replica holds the audit Lease
          description: >-
            No replica audits: check the Lease {{ include "regate.fullname" . }}-audit in
            {{ .Release.Namespace }} and the RBAC for coordination.k8s.io leases.
      {{- end }}
{{- end -}}
