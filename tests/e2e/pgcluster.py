"""A throwaway PostgreSQL cluster for tests and benchmarks (issue 6).

Shared by tests/e2e/test_postgres.py and scripts/bench-copy. start() runs
initdb and pg_ctl in a fresh private directory under /tmp that is also the
server's Unix socket directory; it listens on no TCP port, so it cannot
collide with any other server. stop() stops it (immediate mode) and removes
the directory. As root, initdb, pg_ctl and the server run as the postgres
user (runuser), since PostgreSQL refuses to run as root; as any other user,
as that user. Failures raise AssertionError with the tool's output. Python 3
standard library only.
"""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile

# Durability is off: a throwaway cluster loses nothing worth keeping, and a
# crash-safe commit would only add the disk's sync time to every COPY.
DEFAULT_SETTINGS = {
    "fsync": "off", "full_page_writes": "off", "synchronous_commit": "off",
    "max_connections": "20", "shared_buffers": "32MB",
}


def find_bindir():
    """The newest /usr/lib/postgresql/N/bin with initdb, pg_ctl and psql."""
    found = []
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        version = os.path.basename(os.path.dirname(d))
        if version.isdigit() and all(os.access(os.path.join(d, t), os.X_OK)
                                     for t in ("initdb", "pg_ctl", "psql")):
            found.append((int(version), d))
    if not found:
        raise AssertionError("PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin "
                             "(Debian package postgresql; run scripts/install-deps.sh)")
    return max(found)[1]


class Cluster:
    """base_env: a function returning the environment that psql (and what a
    caller runs with env()) starts from; PG* variables are always replaced.
    settings: postgresql.conf values over DEFAULT_SETTINGS."""

    def __init__(self, base_env=None, settings=None):
        self.dir = None
        self.started = False
        self.error = None
        self.base_env = base_env or (lambda: dict(os.environ))
        self.settings = dict(DEFAULT_SETTINGS, **(settings or {}))

    def _as_owner(self, argv):
        """argv run as the cluster's owner: postgres when we are root (the
        server refuses to run as root), else ourselves."""
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--"] + argv
        return argv

    def _run(self, argv, what):
        p = subprocess.run(self._as_owner(argv), capture_output=True, timeout=60)
        if p.returncode != 0:
            raise AssertionError("%s failed (exit %d): %s %s" % (
                what, p.returncode, p.stdout.decode(errors="replace")[-1000:],
                p.stderr.decode(errors="replace")[-1000:]))

    def start(self):
        if self.started:
            return
        if self.error:  # one failed start fails every later caller, quickly
            raise AssertionError(self.error)
        try:
            self._start()
        except AssertionError as e:
            self.error = str(e)
            raise

    def _start(self):
        self.bindir = find_bindir()
        # Under /tmp, not a caller's directory: as root that one may be 0700
        # and postgres could not reach it; and a socket path must stay short.
        self.dir = tempfile.mkdtemp(prefix="embedpipe-pg-")
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise AssertionError("no postgres user (Debian package postgresql creates it)")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.data = os.path.join(self.dir, "data")
        self.port = 5432  # names the socket file; no TCP port is opened
        self._run([os.path.join(self.bindir, "initdb"), "-D", self.data, "-U", "postgres",
                   "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"], "initdb")
        conf = os.path.join(self.data, "postgresql.conf")
        settings = "listen_addresses = ''\nunix_socket_directories = '%s'\nport = %d\n" % (
            self.dir, self.port)
        settings += "".join("%s = %s\n" % kv for kv in self.settings.items())
        # The file belongs to postgres: append through its owner.
        p = subprocess.run(self._as_owner(["sh", "-c", 'cat >> "$0"', conf]),
                           input=settings.encode(), capture_output=True, timeout=20)
        if p.returncode != 0:
            raise AssertionError("writing postgresql.conf: %r" % p.stderr)
        self.started = True  # from here on, stop() has something to stop
        self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-l",
                   os.path.join(self.dir, "server.log"), "-w", "-t", "30", "start"], "pg_ctl start")

    def stop(self):
        if self.dir is None:
            return
        if self.started:
            try:
                self._run([os.path.join(self.bindir, "pg_ctl"), "-D", self.data,
                           "-m", "immediate", "-w", "stop"], "pg_ctl stop")
            except Exception as e:  # noqa: BLE001 -- report, still remove
                print("pgcluster: %s" % e, flush=True)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
        self.started = False

    def env(self, db="postgres"):
        """The environment psql (and scripts that run psql) connect with."""
        env = {k: v for k, v in self.base_env().items() if not k.startswith("PG")}
        env.update(PGHOST=self.dir, PGPORT=str(self.port), PGUSER="postgres",
                   PGDATABASE=db, PGCLIENTENCODING="UTF8")
        env["PATH"] = self.bindir + os.pathsep + env.get("PATH", "")
        return env

    def psql_argv(self, *args):
        return [os.path.join(self.bindir, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"] + list(args)

    def psql(self, *args, db="postgres", stdin=None):
        """psql's stdout bytes; raises AssertionError on any SQL error."""
        p = subprocess.run(self.psql_argv(*args), input=stdin, capture_output=True,
                           env=self.env(db), timeout=600)
        if p.returncode != 0:
            raise AssertionError("psql %s: exit %d: %s" % (
                " ".join(args)[:300], p.returncode, p.stderr.decode(errors="replace")[-1500:]))
        return p.stdout

    def sql(self, command, db="postgres"):
        return self.psql("-c", command, db=db)

    def copy_out(self, query, db="postgres"):
        """Rows of `query` as lists of str (or None for NULL); the query must
        produce only hex, digits and plain names, so text COPY adds no escape."""
        out = self.psql("-c", "COPY (%s) TO STDOUT" % query, db=db).decode()
        rows = []
        for line in out.split("\n")[:-1]:
            rows.append([None if f == "\\N" else f for f in line.split("\t")])
        return rows

    def has_pgvector(self):
        out = self.sql("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'")
        return b"1" in out.split()
