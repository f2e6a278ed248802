//! Real servers a test runs of its own, each in a temporary folder and
//! gone when dropped: a throwaway Postgres ([`PrivatePostgres`], so that a
//! test may stop and restart it without touching the machine's), PgBouncer
//! in transaction mode ([`PgBouncer`]) and nginx ([`Nginx`], with the
//! shipped `deploy/nginx.conf`). Debian's packages: postgresql, pgbouncer,
//! nginx-light.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Whether the tests run as root: Postgres and PgBouncer refuse to, so
/// they are run as the `postgres` user.
fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
}

/// A fresh folder the `postgres` user may write in.
fn folder(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "errand-{what}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    if as_root() {
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(ok.success());
    }
    dir
}

/// `program args`, as the `postgres` user when root; fails showing stderr.
fn run_as_postgres(program: &Path, args: &[&str]) {
    let mut cmd = if as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    let out = cmd
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn postgres_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("Postgres server binaries in /usr/lib/postgresql")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("an initdb under /usr/lib/postgresql/*/bin")
}

/// A throwaway Postgres server (initdb into a temporary folder).
pub struct PrivatePostgres {
    dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
}

impl PrivatePostgres {
    pub fn launch() -> PrivatePostgres {
        let pg = PrivatePostgres {
            dir: folder("pg"),
            port: super::free_port(),
            bin: postgres_bin(),
        };
        let data = pg.data();
        run_as_postgres(
            &pg.bin.join("initdb"),
            &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        pg.start();
        pg
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn options(&self) -> String {
        format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        )
    }

    pub fn start(&self) {
        let (data, log, options) = (self.data(), self.log(), self.options());
        let args = ["start", "-w", "-D", &data, "-l", &log, "-o", &options];
        run_as_postgres(&self.bin.join("pg_ctl"), &args);
    }

    pub fn stop(&self) {
        let data = self.data();
        run_as_postgres(
            &self.bin.join("pg_ctl"),
            &["stop", "-w", "-m", "fast", "-D", &data],
        );
    }

    /// `pg_ctl restart -m MODE` (`fast`: sessions are ended cleanly;
    /// `immediate`: as a crash, recovered from the WAL).
    pub fn restart(&self, mode: &str) {
        let (data, log, options) = (self.data(), self.log(), self.options());
        let args = [
            "restart", "-w", "-m", mode, "-D", &data, "-l", &log, "-o", &options,
        ];
        run_as_postgres(&self.bin.join("pg_ctl"), &args);
    }

    fn log(&self) -> String {
        self.dir.join("log").display().to_string()
    }

    /// Runs `sql` as the superuser on database `db`; its output (`-At`).
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", db, "-Atc", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn create_database(&self, name: &str) -> String {
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(name)
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let data = self.data();
        let args = ["stop", "-m", "immediate", "-D", &data];
        let _ = if as_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&pg_ctl)
                .args(args)
                .output()
        } else {
            Command::new(&pg_ctl).args(args).output()
        };
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// PgBouncer 1.18 in transaction mode in front of a Postgres server on this
/// machine (trust auth, every database), as teams run it: the usual
/// `ignore_startup_parameters = extra_float_digits`, nothing else relaxed.
pub struct PgBouncer {
    dir: PathBuf,
    pub port: u16,
}

impl PgBouncer {
    pub fn launch(postgres_port: u16) -> PgBouncer {
        let dir = folder("pgbouncer");
        let port = super::free_port();
        let ini = format!(
            "[databases]\n* = host=127.0.0.1 port={postgres_port}\n\
             [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
             auth_type = trust\nauth_file = {dir}/users.txt\npool_mode = transaction\n\
             max_client_conn = 4000\ndefault_pool_size = 20\n\
             ignore_startup_parameters = extra_float_digits\n\
             logfile = {dir}/pgbouncer.log\npidfile = {dir}/pgbouncer.pid\n",
            dir = dir.display()
        );
        std::fs::write(dir.join("pgbouncer.ini"), ini).unwrap();
        std::fs::write(dir.join("users.txt"), "\"postgres\" \"\"\n").unwrap();
        let ini = dir.join("pgbouncer.ini").display().to_string();
        run_as_postgres(Path::new("/usr/sbin/pgbouncer"), &["-d", &ini]);
        PgBouncer { dir, port }
    }

    /// A URL through the pooler to database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("pgbouncer.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// nginx with the shipped `deploy/nginx.conf`, its upstream servers pointed
/// at API nodes on this machine, listening on a port of its own, with its
/// own prefix (not the system's service).
pub struct Nginx {
    dir: PathBuf,
    child: Child,
    pub port: u16,
}

impl Nginx {
    /// The shipped configuration for `upstreams` (ports on 127.0.0.1), in
    /// a folder of its own: what `nginx -t` and the scale test run.
    pub fn config(upstreams: &[u16], port: u16, dir: &Path) -> PathBuf {
        let shipped = include_str!("../../deploy/nginx.conf");
        let servers: String = upstreams
            .iter()
            .map(|p| format!("        server 127.0.0.1:{p} max_fails=2 fail_timeout=10s;\n"))
            .collect();
        let mut lines: Vec<String> = Vec::new();
        let mut servers_written = false;
        for line in shipped.lines() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("server api") {
                if !servers_written {
                    lines.push(servers.trim_end().to_string());
                    servers_written = true;
                }
            } else if trimmed.starts_with("listen ") {
                lines.push(format!("        listen 127.0.0.1:{port};"));
            } else if trimmed.starts_with("worker_processes") {
                lines.push("worker_processes 2;".into());
            } else if trimmed == "http {" {
                lines.push(line.to_string());
                for (directive, name) in [
                    ("client_body_temp_path", "body"),
                    ("proxy_temp_path", "proxy"),
                    ("fastcgi_temp_path", "fastcgi"),
                    ("uwsgi_temp_path", "uwsgi"),
                    ("scgi_temp_path", "scgi"),
                ] {
                    lines.push(format!("    {directive} {}/{name};", dir.display()));
                }
            } else {
                lines.push(line.to_string());
            }
        }
        assert!(servers_written, "deploy/nginx.conf names its API servers");
        let path = dir.join("nginx.conf");
        let head = format!(
            "pid {}/nginx.pid;\nerror_log {}/error.log warn;\n",
            dir.display(),
            dir.display()
        );
        std::fs::write(&path, head + &lines.join("\n") + "\n").unwrap();
        path
    }

    pub fn launch(upstreams: &[u16]) -> Nginx {
        let dir =
            std::env::temp_dir().join(format!("errand-nginx-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = super::free_port();
        let config = Nginx::config(upstreams, port, &dir);
        let child = Command::new("/usr/sbin/nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&config)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx (Debian's nginx-light)");
        Nginx { dir, child, port }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What nginx logged (errors and warnings).
    pub fn errors(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // TERM, not KILL: the master then stops its workers too.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
