# PgBouncer in front of the ERP's PostgreSQL, tuned as the runbook says
# (transaction pooling, 1000 clients, 25 server connections per pool, a
# reserve of 5 after 3 s). Apply renders pgbouncer.ini, sends RELOAD on the
# admin console and checks SHOW CONFIG / SHOW DATABASES; a runtime SET is
# drift. Declared only when pgbouncer_config_file is set, so the web tier
# alone still plans against moto; scripts/demo sets every variable below
# from scripts/servers/pgbouncer.sh (HIMAPLAN_VAR_...).

variable "pgbouncer_config_file" {
  type        = string
  default     = ""
  description = "pgbouncer.ini of the running PgBouncer; empty leaves PgBouncer out"
}

variable "pgbouncer_admin_url" {
  type        = string
  default     = ""
  sensitive   = true
  description = "postgres://admin:PASSWORD@HOST:PORT/pgbouncer (pass it as HIMAPLAN_VAR_pgbouncer_admin_url)"
}

variable "pgbouncer_run_dir" {
  type        = string
  default     = "/var/run/postgresql"
  description = "where PgBouncer keeps its socket, log and pid file"
}

variable "pgbouncer_auth_file" {
  type    = string
  default = "/etc/pgbouncer/userlist.txt"
}

variable "pgbouncer_port" {
  type    = number
  default = 6432
}

variable "postgres_port" {
  type    = number
  default = 5432
}

variable "pgbouncer_default_pool_size" {
  type    = number
  default = 25
}

variable "appdb_pool_size" {
  type    = number
  default = 30
}

provider "pgbouncer" {
  admin_url = var.pgbouncer_admin_url
}

resource "pgbouncer" "main" {
  count       = var.pgbouncer_config_file == "" ? 0 : 1
  config_file = var.pgbouncer_config_file
  admin_url   = var.pgbouncer_admin_url
  listen_addr = "127.0.0.1"
  listen_port = var.pgbouncer_port
  auth_type   = "md5"
  auth_file   = var.pgbouncer_auth_file
  admin_users = "admin"

  pool_mode            = "transaction"
  max_client_conn      = 1000
  default_pool_size    = var.pgbouncer_default_pool_size
  reserve_pool_size    = 5
  reserve_pool_timeout = 3

  settings = {
    unix_socket_dir = var.pgbouncer_run_dir
    logfile         = "${var.pgbouncer_run_dir}/pgbouncer.log"
    pidfile         = "${var.pgbouncer_run_dir}/pgbouncer.pid"
  }

  database "appdb" {
    host      = "127.0.0.1"
    port      = var.postgres_port
    dbname    = "appdb"
    user      = "app"
    pool_size = var.appdb_pool_size
  }
}
