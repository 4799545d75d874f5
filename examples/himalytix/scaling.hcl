# The runbook's scaling indicators as policies, read by `himaplan advise`
# (plan and apply ignore this file). advise evaluates each rule over its
# window with a Prometheus range query, every max(15s, for/10000): a rule
# fires only when its condition held at every evaluation. It proposes the
# new values, with the evidence and the plan they produce, e.g. as a pull
# request (examples/ci/advise.yml). docs/advise.md has the details.
#
# The metrics are the runbook's: cAdvisor's container CPU and memory (with
# the compose service as label `service`), django-prometheus' request
# histogram, postgres_exporter's pg_stat_database and pg_settings, and the
# redis exporter's list length of the Celery queue.

# The URL comes from HIMAPLAN_PROMETHEUS_URL (or set url = "http://...").
provider "prometheus" {}

# CPU above 80 % for 5 minutes, or p95 above 1 s → one more web instance;
# CPU below 30 % for 24 hours → one fewer.
scaling_policy "web_count" {
  variable = "web_count"
  min      = 2
  max      = 10
  step     = 1

  up "cpu" {
    query = "avg(rate(container_cpu_usage_seconds_total{service=\"web\"}[5m]))"
    above = 0.8
    for   = "5m"
  }

  up "latency_p95" {
    query = "histogram_quantile(0.95, sum by (le) (rate(django_http_request_duration_seconds_bucket[5m])))"
    above = 1
    for   = "5m"
  }

  down "cpu" {
    query = "avg(rate(container_cpu_usage_seconds_total{service=\"web\"}[5m]))"
    below = 0.3
    for   = "24h"
  }
}

# Memory above 85 % → the next bigger type. Right-sizing: CPU below 30 %
# and memory below 40 % for 7 days → one type smaller (a scale-down needs
# every down rule). A type change stops and starts each instance, one at a
# time, drained out of the nginx upstream: the plan shows those batches.
scaling_policy "web_instance_type" {
  variable = "web_instance_type"
  ladder   = ["t3.small", "t3.medium", "t3.large", "t3.xlarge"]

  up "memory" {
    query = "avg(container_memory_working_set_bytes{service=\"web\"} / container_spec_memory_limit_bytes{service=\"web\"})"
    above = 0.85
    for   = "5m"
  }

  down "memory" {
    query = "avg(container_memory_working_set_bytes{service=\"web\"} / container_spec_memory_limit_bytes{service=\"web\"})"
    below = 0.4
    for   = "168h"
  }

  down "cpu" {
    query = "avg(rate(container_cpu_usage_seconds_total{service=\"web\"}[5m]))"
    below = 0.3
    for   = "168h"
  }
}

# More than 1,000 tasks waiting for 5 minutes → a quarter more workers (at
# least one); fewer than 100 for an hour → as many fewer. `current` is the
# variable's value now.
scaling_policy "celery_replicas" {
  variable = "celery_replicas"
  min      = 2
  max      = 16
  step     = max(1, floor(current / 4))

  up "queue" {
    query = "sum(redis_list_length{list=\"celery\"})"
    above = 1000
    for   = "5m"
  }

  down "queue" {
    query = "sum(redis_list_length{list=\"celery\"})"
    below = 100
    for   = "1h"
  }
}

# Database connections above 80 % of max_connections → 5 more server
# connections per PgBouncer pool.
scaling_policy "pgbouncer_pool_size" {
  variable = "pgbouncer_default_pool_size"
  min      = 10
  max      = 80
  step     = 5

  up "connections" {
    query = "sum(pg_stat_database_numbackends) / max(pg_settings_max_connections)"
    above = 0.8
    for   = "5m"
  }
}
