// cronref: the reference for himaplan's cron semantics. A small program over
// github.com/robfig/cron/v3, the parser and scheduler the Kubernetes CronJob
// controller uses, built by scripts/servers/cronref.sh and driven by
// tests/cron_differential.rs. It owns no state and opens no network.
module himaplan.local/cronref

go 1.26.0

require github.com/robfig/cron/v3 v3.0.1
