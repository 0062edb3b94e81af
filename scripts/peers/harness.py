"""scripts/bench peers: embedpipe side by side with what its users would pick
instead, on the same corpus against the same server model, in the same run.

  scripts/bench peers [--scenario NAME[,NAME...]|all] [--clients LIST]
                      [--sections N] [--long K] [--seed S] [--scale X]
                      [--dims D] [-j J] [--latency-ms B] [--latency-per-ktok-ms X]
                      [--tpm N] [--faults SPEC] [--peer-batch N] [--timeout S]
                      [--out DIR] [--build DIR]

Clients (--clients, comma-separated; default all three):
  embedpipe   build/embedpipe -j J --overlong skip (defaults otherwise)
  openai-sdk  scripts/peers/openai_sdk.mjs: the official `openai` npm SDK,
              batches of B texts, J requests in flight (a promise pool)
  langchain   scripts/peers/langchain.mjs: @langchain/openai OpenAIEmbeddings
              .embedDocuments with batchSize B, maxConcurrency J
The peers' packages (pinned in scripts/peers/package-lock.json) are installed
with `npm ci` into scripts/peers/node_modules (ignored) when missing.

Scenarios (--scenario; default all, in this order):
  realistic  the corpus as a user has it: N sections plus K over 8191 tokens;
             peers send B = 2048 inputs per request (the API's input cap)
  cleaned    the same corpus without what the API refuses (the K long
             sections, and any over 8191 tokens unnormalized); peers hand-tuned:
             B = the largest multiple of 16 whose batches of this corpus all
             stay under 97% of the 300,000-token request cap
  nolatency  cleaned, tuned, and a server that answers at once: client-bound
  tpm        cleaned, tuned, the latency model and a server limited to
             --tpm tokens per minute (default 3,000,000)
  faults     cleaned, tuned, the latency model and --faults (default 8% 429,
             5% 500, 3% 502, 3% connection reset, by request number)
  10x        embedpipe only (peers with --clients): the cleaned corpus and one
             --scale times as long, no latency, each run --rss-runs times;
             the largest peak RSS must not grow. Then each size once more
             with request --rss-stall stalled (embedpipe --stall-timeout 1):
             the answers behind it wait, so the read window fills, and the
             peak is the bound that must not grow either
Every run gets its own fresh build/fake_provider (data[] in order, as the
real API returns it). The latency model is --latency-ms + --latency-per-ktok-ms
per 1,000 request tokens (default 250 + 20).

Lower bound, from the server's model, for the valid records' N inputs and T
tokens (embedpipe's exact count of the normalized texts):
  latency  (R * base + T * per_token) / J, where R = max(ceil(N / 2048),
           ceil(T / 300000)) is the fewest requests the API's caps allow
  tpm      (T - TPM) / (TPM / 60 s): the server's budget starts a minute's
           worth full and refills continuously, as OpenAI's does
The bound is the larger of those that apply; none without latency or limit.

Measured per client: exit status, records written / valid, wall time, user +
sys CPU and peak RSS of the client process (wait4 in a small launcher), requests, 429s and
retries at the server (a retry is a request whose inputs, tokens and bytes
repeat an earlier one's), and whether every vector verified bit for bit
(build/verify_embeddings). embedpipe's expectation is the normalized text;
a peer's is the text as it sent it (raw, and for LangChain with newlines made
spaces: its stripNewLines default), and its ids as JSON.parse leaves them
(integers beyond 2^53 rounded: counted and reported as not verified).

Writes the tables to stdout and DIR/results.md (default build/bench/),
the figures to DIR/results.json, and per scenario DIR/SCENARIO.png:
records embedded over time per client (from the server log's answer times),
cumulative and per-interval rate, with the lower bound marked. gnuplot
(Debian gnuplot-nox) is installed with apt-get when missing. Then each of the
issue's five goals is evaluated where its scenario ran.
"""

import argparse
import collections
import decimal
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENTS = ("embedpipe", "openai-sdk", "langchain")
PEER_SCRIPTS = {"openai-sdk": "openai_sdk.mjs", "langchain": "langchain.mjs"}
MODEL = "text-embedding-3-small"
MAX_INPUTS = 2048
MAX_REQUEST_TOKENS = 300000
MAX_INPUT_TOKENS = 8191
DEFAULT_FAULTS = "rate:0.08:429,rate:0.05:500,rate:0.03:502,rate:0.03:reset"

# Runs a client and writes its exit status, wall time, CPU and peak RSS.
# From a fresh small interpreter: a child's ru_maxrss starts at the RSS of
# the process it was forked from (Linux keeps the old high-water mark across
# exec), and this script's own RSS grows with the corpora it reads.
LAUNCHER = """
import json, os, sys, time
t0 = time.monotonic()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, ru = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump({"status": status, "wall": time.monotonic() - t0, "user": ru.ru_utime,
               "sys": ru.ru_stime, "maxrss_kb": ru.ru_maxrss}, f)
"""

Scenario = collections.namedtuple(
    "Scenario", "name corpus latency tpm faults peer_batch peers_default what")
SCENARIOS = [
    Scenario("realistic", "realistic", True, False, False, "max", True,
             "the corpus as is; peers send 2048 inputs per request"),
    Scenario("cleaned", "cleaned", True, False, False, "tuned", True,
             "long sections removed; peers' batch hand-tuned"),
    Scenario("nolatency", "cleaned", False, False, False, "tuned", True,
             "no server latency: client-bound"),
    Scenario("tpm", "cleaned", True, True, False, "tuned", True,
             "server limited in tokens per minute"),
    Scenario("faults", "cleaned", True, False, True, "tuned", True,
             "server injecting faults"),
    Scenario("10x", "cleaned+big", False, False, False, "tuned", False,
             "memory growth: 1x and 10x corpus, no latency"),
]


def log(msg):
    sys.stderr.write("bench peers: %s\n" % msg)
    sys.stderr.flush()


def die(msg):
    log(msg)
    sys.exit(1)


def sudo_prefix():
    return [] if os.geteuid() == 0 else ["sudo"]


def ensure_gnuplot():
    """True when gnuplot can be run, installing Debian's gnuplot-nox if needed."""
    if shutil.which("gnuplot"):
        return True
    log("installing gnuplot-nox with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(sudo_prefix() + ["apt-get", "install", "-y", "-q", "gnuplot-nox"],
                       env=env, stdout=subprocess.DEVNULL)
    if r.returncode != 0 or not shutil.which("gnuplot"):
        log("gnuplot is not available: no plots")
        return False
    return True


def ensure_peers():
    """Installs the peers' pinned npm packages into scripts/peers/node_modules."""
    if not shutil.which("node") or not shutil.which("npm"):
        die("the peers need node and npm")
    stamp = os.path.join(HERE, "node_modules", ".package-lock.json")
    lock = os.path.join(HERE, "package-lock.json")
    if os.path.exists(stamp) and os.path.getmtime(stamp) >= os.path.getmtime(lock):
        return
    log("npm ci in %s" % HERE)
    r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel", "error"],
                       cwd=HERE, stdout=subprocess.DEVNULL)
    if r.returncode != 0:
        die("npm ci failed")


# --------------------------------------------------------------------------
# Corpora.

class Corpus:
    """A corpus file with its expectation and manifest (gen-corpus's), and
    the token figures the lower bounds and the peers' tuning need."""

    def __init__(self, path, expected, manifest):
        self.path, self.expected, self.manifest = path, expected, manifest
        self.stem = path[:-len(".jsonl")]

    def stats(self, build):
        """{"records", "tokens", "long", "raw_tokens": [per valid record]},
        cached beside the corpus."""
        cache = self.stem + ".stats.json"
        if os.path.exists(cache):
            with open(cache) as f:
                return json.load(f)

        def count(*flags):
            r = subprocess.run([os.path.join(build, "embedpipe"), "--count-tokens",
                                "--overlong", "skip", "-q"] + list(flags) + [self.path],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            return [json.loads(row)["tokens"] for row in r.stdout.splitlines()]
        normalized = count()
        raw = count("--normalize", "none")
        valid = [t for t in normalized if t <= MAX_INPUT_TOKENS]
        s = {"records": len(valid), "tokens": sum(valid),
             "long": len(normalized) - len(valid),
             "raw_tokens": [t for t in raw if t <= MAX_INPUT_TOKENS]}
        with open(cache, "w") as f:
            json.dump(s, f)
        return s

    def peer_expected(self, strip_newlines):
        """(path, ids rounded) of the expectation for a peer: each record
        but the too-long ones, its text as the peer reads and sends it, its
        id as JSON.parse and JSON.stringify leave it."""
        path = self.stem + (".peer-strip.jsonl" if strip_newlines else ".peer.jsonl")
        too_long = set()
        with open(self.manifest) as f:
            for row in f:
                e = json.loads(row)
                if e["kind"] == "too_long":
                    too_long.add(e["line"])
        rounded = 0
        with open(self.path, "rb") as fin, open(path + ".tmp", "w", encoding="utf-8") as out:
            for n, raw in enumerate(fin.read().split(b"\n"), 1):
                # Node decodes with U+FFFD for each maximal invalid subpart,
                # as Python's "replace" does.
                line = raw.decode("utf-8", "replace")
                if not line.strip() or n in too_long:
                    continue
                rec = json.loads(line)
                rid, text = rec["id"], rec["text"]
                if isinstance(rid, int) and abs(rid) > 2**53:
                    # JSON.stringify prints the double's shortest digits,
                    # as Python's repr does, padded with zeros.
                    js = int(decimal.Decimal(repr(float(rid))))
                    rounded += js != rid
                    rid = js
                if strip_newlines:
                    text = text.replace("\n", " ")
                out.write('{"id":%s,"text":%s}\n' % (json.dumps(rid, ensure_ascii=False),
                                                    json.dumps(text, ensure_ascii=False)))
        os.replace(path + ".tmp", path)
        return path, rounded


def cleaned(src, build):
    """src without the sections the API refuses, as a user would clean it:
    the long sections, and those over 8191 tokens as sent unnormalized (a
    decomposed text has more tokens than its NFC form). The other lines,
    expected records and manifest entries are kept and renumbered;
    generated once."""
    stem = src.stem + "-clean"
    dst = Corpus(stem + ".jsonl", stem + ".expected.jsonl", stem + ".manifest.jsonl")
    if os.path.exists(stem + ".done"):
        return dst
    r = subprocess.run([os.path.join(build, "embedpipe"), "--count-tokens", "--normalize", "none",
                        "-q", src.path], stdout=subprocess.PIPE, check=True)
    raw_tokens = iter([json.loads(row)["tokens"] for row in r.stdout.splitlines()])
    entries = []
    with open(src.manifest) as f:
        for row in f:
            entries.append(json.loads(row))
    too_long = {e["line"] for e in entries if e["kind"] == "too_long"}
    with open(src.expected, "rb") as f:
        expected = f.read().split(b"\n")[:-1]
    new_line, new_index = {}, {}
    with open(src.path, "rb") as fin, open(dst.path, "wb") as out, \
            open(dst.expected, "wb") as exp:
        n = kept = index = kept_index = 0
        for line in fin:
            n += 1
            if line.strip():  # a record: counted, and expected unless too long
                drop = next(raw_tokens) > MAX_INPUT_TOKENS or n in too_long
                if n not in too_long:
                    if not drop:
                        exp.write(expected[index] + b"\n")
                        new_index[index] = kept_index
                        kept_index += 1
                    index += 1
                if drop:
                    continue
            kept += 1
            new_line[n] = kept
            out.write(line)
    with open(dst.manifest, "w", encoding="utf-8") as f:
        for e in entries:
            if e["line"] not in new_line:
                continue
            e["line"] = new_line[e["line"]]
            if "expected_index" in e:
                e["expected_index"] = new_index[e["expected_index"]]
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    open(stem + ".done", "w").close()
    return dst


def tuned_batch(raw_tokens):
    """The largest multiple of 16 (at most 2048) whose consecutive batches
    of these token counts all stay under 97% of the request cap: what a user
    finds by trying, with a margin for LangChain's newline stripping."""
    best = 16
    for size in range(16, MAX_INPUTS + 1, 16):
        if all(sum(raw_tokens[i:i + size]) <= 0.97 * MAX_REQUEST_TOKENS
               for i in range(0, len(raw_tokens), size)):
            best = size
        else:
            break
    return best


# --------------------------------------------------------------------------
# Running one client.

def lower_bound(a, sc, stats):
    """(seconds or None, how it was computed)."""
    n, t = stats["records"], stats["tokens"]
    parts = []
    if sc.latency and (a.latency_ms or a.latency_per_ktok_ms):
        r = max(math.ceil(n / MAX_INPUTS), math.ceil(t / MAX_REQUEST_TOKENS))
        lb = (r * a.latency_ms + t * a.latency_per_ktok_ms / 1000.0) / 1000.0 / a.concurrency
        parts.append((lb, "latency: (%d requests x %g ms + %d tokens x %g ms/ktok) / %d" % (
            r, a.latency_ms, t, a.latency_per_ktok_ms, a.concurrency)))
    if sc.tpm:
        lb = max(0.0, (t - a.tpm) / (a.tpm / 60.0))
        parts.append((lb, "tpm: (%d tokens - %d) / (%d / 60 s)" % (t, a.tpm, a.tpm)))
    if not parts:
        return None, "none (the server answers at once)"
    best = max(parts)
    return best[0], "; ".join(p[1] for p in parts)


def server_args(a, sc):
    args = []
    if sc.latency:
        args += ["--latency-ms", str(a.latency_ms),
                 "--latency-per-ktok-ms", str(a.latency_per_ktok_ms)]
    if sc.tpm:
        args += ["--tpm", str(a.tpm)]
    if sc.faults:
        args += ["--faults", a.faults, "--seed", str(a.seed)]
    return args


def read_server_log(path, t0_ms):
    """Requests, 429s, retries, tokens accepted and the embedded-records
    series [(seconds since the client started, inputs)] of one run."""
    requests = n429 = retries = tokens = 0
    seen = set()
    series = []
    if os.path.exists(path):
        with open(path) as f:
            for row in f:
                e = json.loads(row)
                requests += 1
                n429 += e["status"] == 429
                sig = (e["inputs"], e["tokens"], e["bytes"], e["text_bytes"])
                retries += sig in seen
                seen.add(sig)
                if e["status"] == 200 and not e["fault"]:
                    tokens += e["tokens"]
                    series.append(((e["t_ms"] - t0_ms) / 1000.0, e["inputs"]))
    series.sort()
    return {"requests": requests, "429s": n429, "retries": retries,
            "tokens_accepted": tokens, "series": series}


def count_lines(path):
    if not os.path.exists(path):
        return 0
    n = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            n += block.count(b"\n")
    return n


def verify(build, dims, expected, out_path):
    with open(out_path, "rb") as f:
        return subprocess.run([os.path.join(build, "verify_embeddings"), "--model", MODEL,
                               "--dims", str(dims), "--expected", expected],
                              stdin=f, capture_output=True)


def run_client(bench, a, build, sc, client, corpus, stats, batch, label, stall=0):
    """Runs one client against a fresh server; returns its row. With
    `stall` (embedpipe only), that request stalls and is retried after 1 s."""
    work = tempfile.mkdtemp(prefix="peers-", dir=os.path.join(build, "bench-cache"))
    out_path = os.path.join(work, "out.jsonl")
    err_path = os.path.join(work, "stderr.txt")
    errors_path = os.path.join(work, "errors.jsonl")
    stalled = ["--faults", "%d:stall" % stall] if stall else []
    server, port, log_path, stats_path = bench.start_server(build, work,
                                                            server_args(a, sc) + stalled)
    base_url = "http://127.0.0.1:%d/v1" % port
    if client == "embedpipe":
        cmd = [os.path.join(build, "embedpipe"), "--base-url", base_url,
               "--dimensions", str(a.dims), "-j", str(a.concurrency),
               "--overlong", "skip", "--errors", errors_path]
        cmd += ["--stall-timeout", "1"] if stall else []
        cmd += [corpus.path]
    else:
        cmd = ["node", os.path.join(HERE, PEER_SCRIPTS[client]), "--in", corpus.path,
               "--out", out_path, "--base-url", base_url, "--model", MODEL,
               "--dimensions", str(a.dims), "--batch", str(batch),
               "--concurrency", str(a.concurrency)]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OPENAI_") and not k.lower().endswith("_proxy")}
    env["OPENAI_API_KEY"] = "sk-bench"
    load = os.getloadavg()
    killed = False
    usage_path = os.path.join(work, "usage.json")
    try:
        with open(out_path if client == "embedpipe" else os.devnull, "wb") as out, \
                open(err_path, "wb") as err:
            t0_ms = time.time() * 1000
            t0 = time.monotonic()
            p = subprocess.Popen([sys.executable, "-S", "-c", LAUNCHER, usage_path] + cmd,
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                 start_new_session=True)
            try:
                p.wait(timeout=a.timeout)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
                killed = True
            wall = time.monotonic() - t0
    finally:
        bench.stop_server(server)
    usage = {"wall": wall, "user": 0.0, "sys": 0.0, "maxrss_kb": 0}
    p.returncode = -9  # killed before the launcher could report
    if os.path.exists(usage_path):
        with open(usage_path) as f:
            usage = json.load(f)
        p.returncode = os.waitstatus_to_exitcode(usage["status"])
    wall = usage["wall"]
    with open(stats_path) as f:
        server_stats = json.load(f)
    served = read_server_log(log_path, t0_ms)
    written = count_lines(out_path)
    with open(err_path, encoding="utf-8", errors="replace") as f:
        stderr = f.read()

    valid = stats["records"]
    if client == "embedpipe":
        v, dropped, bad, reported, unexpected = bench.check_embedpipe_output(
            build, a.dims, corpus.manifest, corpus.expected, errors_path, out_path, work)
        ok = v.returncode == 0 and not unexpected and p.returncode in (0, 2)
        verified = "yes" if ok else "NO: " + (v.stderr.decode().strip()[:120]
                                             or "unexpected errors %r" % unexpected[:2])
    else:
        expected, rounded = corpus.peer_expected(client == "langchain")
        if written == 0:
            verified = "NO: no output"
        elif written != valid:
            verified = "NO: %d of %d records" % (written, valid)
        else:
            v = verify(build, a.dims, expected, out_path)
            if v.returncode != 0:
                verified = "NO: " + v.stderr.decode().strip()[:120]
            elif rounded:
                verified = "NO: %d ids > 2^53 rounded (vectors right)" % rounded
            else:
                verified = "yes"
    failure = ""
    if p.returncode != 0 and client != "embedpipe":
        lines = [l.strip() for l in stderr.splitlines() if l.strip()]
        # Node prints the source line of the throw, then "SomeError: message".
        msg = next((l for l in lines if re.match(r"\w*Error\b", l)), lines[-1] if lines else "")
        failure = msg[:200]
    row = {
        "scenario": sc.name, "client": label, "exit": "killed" if killed else p.returncode,
        "written": written, "valid": valid, "wall": wall,
        "cpu": usage["user"] + usage["sys"], "user": usage["user"], "sys": usage["sys"],
        "rss_mb": usage["maxrss_kb"] / 1024.0, "requests": served["requests"],
        "429s": served["429s"], "retries": served["retries"],
        "tokens_accepted": served["tokens_accepted"],
        "server_cpu": server_stats["cpu_user_s"] + server_stats["cpu_sys_s"],
        "verified": verified, "batch": batch if client != "embedpipe" else None,
        "load": load, "failure": failure, "series": served["series"],
    }
    if verified == "yes" or a.keep_failed is False:
        shutil.rmtree(work, ignore_errors=True)
    else:
        log("%s %s: files kept in %s" % (sc.name, label, work))
    return row


# --------------------------------------------------------------------------
# Report.

def fmt_row(r, lb):
    wall = "%.1f" % r["wall"]
    ratio = "%.3f" % (r["wall"] / lb) if lb else "-"
    return "| %s | %s | %d / %d | %s | %s | %s | %.1f (%.1f + %.1f) | %.0f | %d | %d | %d | %.1f | %.2f | %s |" % (
        r["client"], r["exit"], r["written"], r["valid"], wall,
        "%.1f" % lb if lb else "-", ratio, r["cpu"], r["user"], r["sys"], r["rss_mb"],
        r["requests"], r["429s"], r["retries"], r["server_cpu"], r["load"][0],
        r["verified"])


TABLE_HEAD = ("| client | exit | records written / valid | wall s | lower bound s | wall / bound "
              "| CPU s (user + sys) | peak RSS MB | requests | 429s | retries | server CPU s "
              "| load (1 min) | verified |\n"
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")


def plot(scenario, rows, lb, out_dir):
    """DIR/SCENARIO.png: records embedded over time, one line per client."""
    end = max([r["wall"] for r in rows] + [lb or 0, 1])
    step = max(1.0, end / 30.0)
    data = []
    for r in rows:
        path = os.path.join(out_dir, "%s-%s.dat" % (scenario, r["client"].replace(" ", "_")))
        bins = collections.Counter()
        with open(path, "w") as f:
            total = 0
            f.write("0 0\n")
            for t, n in r["series"]:
                total += n
                f.write("%.3f %d\n" % (t, total))
                bins[int(t // step)] += n
        rate_path = path[:-4] + ".rate.dat"
        with open(rate_path, "w") as f:
            for b in range(int(end // step) + 1):
                f.write("%.3f %.1f\n" % ((b + 0.5) * step, bins[b] / step))
        data.append((r["client"], path, rate_path))
    png = os.path.join(out_dir, scenario + ".png")
    lines = ["set terminal pngcairo size 1100,800 font ',10'",
             "set output '%s'" % png,
             "set multiplot layout 2,1 title 'scripts/bench peers: %s'" % scenario,
             "set key left top", "set grid", "set xrange [0:%g]" % (end * 1.02),
             "set xlabel 'seconds since the client started'"]
    if lb:
        lines.append("set arrow 1 from %g, graph 0 to %g, graph 1 nohead dt 2 lc 'black'"
                     % (lb, lb))
        lines.append("set label 1 'lower bound' at %g, graph 0.95 left offset 0.5,0" % lb)
    lines.append("set ylabel 'records embedded'")
    lines.append("plot " + ", ".join("'%s' using 1:2 with steps lw 2 title '%s'" % (p, c)
                                     for c, p, _ in data))
    lines.append("set key right top")
    lines.append("set ylabel 'records/s (%.1f s intervals)'" % step)
    lines.append("plot " + ", ".join("'%s' using 1:2 with lines lw 2 title '%s'" % (rp, c)
                                     for c, _, rp in data))
    lines.append("unset multiplot")
    r = subprocess.run(["gnuplot"], input="\n".join(lines) + "\n", text=True,
                       capture_output=True)
    if r.returncode != 0:
        log("gnuplot failed: %s" % r.stderr.strip()[:300])
        return None
    return png


def best(rows, key):
    done = [r for r in rows if r["exit"] == 0 and r["written"] == r["valid"]]
    return min(done, key=lambda r: r[key]) if done else None


def goals(results):
    """Lines evaluating the issue's five goals where their scenario ran."""
    out = []
    by = {s["name"]: s for s in results}

    def rows(name):
        s = by[name]
        ep = [r for r in s["rows"] if r["client"].startswith("embedpipe")]
        peers = [r for r in s["rows"] if not r["client"].startswith("embedpipe")]
        return s, ep, peers

    if "realistic" in by:
        s, ep, peers = rows("realistic")
        e = ep[0] if ep else None
        if e:
            ratio = e["wall"] / s["lower_bound"]
            complete = e["written"] == e["valid"] and e["verified"] == "yes"
            peer_txt = ", ".join("%s wrote %d" % (p["client"], p["written"]) for p in peers)
            out.append("1. realistic: embedpipe %s %d of %d valid records (verified %s), wall "
                       "%.1f s = %.3f x the %.1f s bound (goal <= 1.05): %s. Peers: %s." % (
                           "completed" if complete else "did NOT complete", e["written"],
                           e["valid"], e["verified"], e["wall"], ratio, s["lower_bound"],
                           "MET" if complete and ratio <= 1.05 else "NOT MET",
                           peer_txt or "not run"))
    if "cleaned" in by:
        s, ep, peers = rows("cleaned")
        if ep and peers:
            e = ep[0]
            bw, bc, br = best(peers, "wall"), best(peers, "cpu"), best(peers, "rss_mb")
            if bw:
                w, c, m = e["wall"] / bw["wall"], e["cpu"] / bc["cpu"], e["rss_mb"] / br["rss_mb"]
                met = w <= 0.85 and c <= 0.1 and m <= 1 / 7.0 and e["rss_mb"] < 100
                out.append("2. cleaned: wall %.1f s = %.3f x best peer's %.1f s (%s; goal <= 0.85); "
                           "CPU %.2f s = %.3f x %.2f s (%s; goal <= 0.10); peak RSS %.0f MB = "
                           "%.3f x %.0f MB (%s; goal <= 0.143 and < 100 MB): %s." % (
                               e["wall"], w, bw["wall"], bw["client"], e["cpu"], c, bc["cpu"],
                               bc["client"], e["rss_mb"], m, br["rss_mb"], br["client"],
                               "MET" if met else "NOT MET"))
            else:
                out.append("2. cleaned: no peer completed, nothing to compare with.")
    if "nolatency" in by:
        s, ep, peers = rows("nolatency")
        if ep and peers:
            e = ep[0]
            bw = best(peers, "wall")
            if bw:
                x = (e["written"] / e["wall"]) / (bw["written"] / bw["wall"])
                out.append("3. no latency: embedpipe %.0f records/s, best peer (%s) %.0f "
                           "records/s: %.2f x (goal >= 5): %s." % (
                               e["written"] / e["wall"], bw["client"],
                               bw["written"] / bw["wall"], x, "MET" if x >= 5 else "NOT MET"))
    if "tpm" in by:
        s, ep, peers = rows("tpm")
        if ep:
            e = ep[0]
            share = s["tpm_bound"] / e["wall"]
            out.append("4. tpm: embedpipe took %.1f s against the %.1f s the %d TPM budget "
                       "needs beyond its first minute's worth: %.1f%% of the limit (goal >= 95%%): "
                       "%s." % (e["wall"], s["tpm_bound"], s["tpm"], 100 * share,
                                "MET" if share >= 0.95 else "NOT MET"))
    if "10x" in by:
        s, ep, _ = rows("10x")
        # Labels are "embedpipe 1x", "embedpipe 10x", numbered " #k" with
        # --rss-runs, and "embedpipe 1x stalled", "embedpipe 10x stalled".
        plain = [r for r in ep if not r["client"].endswith(" stalled")]
        stalled = [r for r in ep if r["client"].endswith(" stalled")]
        one = [r["rss_mb"] for r in plain if r["client"].split()[1] == "1x"]
        big = [r for r in plain if r["client"].split()[1] != "1x"]
        if one and big:
            ten = [r["rss_mb"] for r in big]
            x = max(ten) / max(one)
            out.append("5. 10x: peak RSS at 1x %s MB, at %s %s MB; the largest %.1f and %.1f MB: "
                       "%.2f x (goal <= 1.2): %s."
                       % (", ".join("%.1f" % m for m in one), big[0]["client"].split()[1],
                          ", ".join("%.1f" % m for m in ten), max(one), max(ten), x,
                          "MET" if x <= 1.2 else "NOT MET"))
        if len(stalled) == 2:
            lo, hi = stalled[0]["rss_mb"], stalled[1]["rss_mb"]
            out.append("   With a request stalled (the read window full): %.1f and %.1f MB, "
                       "%.2f x." % (lo, hi, hi / lo))
    return out


# --------------------------------------------------------------------------

def main(bench, argv):
    ap = argparse.ArgumentParser(prog="scripts/bench peers",
                                 description="embedpipe side by side with its peers")
    ap.add_argument("--scenario", default="all",
                    help="comma-separated: %s, or all" % ", ".join(s.name for s in SCENARIOS))
    ap.add_argument("--clients", default="",
                    help="comma-separated from %s (default: all; 10x: embedpipe)"
                    % ", ".join(CLIENTS))
    ap.add_argument("--sections", type=int, default=19195, help="sections within the limits")
    ap.add_argument("--long", type=int, default=12, help="sections over 8191 tokens")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--scale", type=int, default=10, help="the 10x scenario's factor")
    ap.add_argument("--rss-runs", type=int, default=3,
                    help="runs of each size in the 10x scenario (the largest peaks compared)")
    ap.add_argument("--rss-stall", type=int, default=10,
                    help="the request that stalls in the 10x scenario's last two runs "
                         "(0: no such runs)")
    ap.add_argument("--dims", type=int, default=1536)
    ap.add_argument("--concurrency", "-j", type=int, default=5)
    ap.add_argument("--latency-ms", type=float, default=250)
    ap.add_argument("--latency-per-ktok-ms", type=float, default=20)
    ap.add_argument("--tpm", type=int, default=3000000)
    ap.add_argument("--faults", default=DEFAULT_FAULTS)
    ap.add_argument("--peer-batch", type=int, default=0,
                    help="the peers' batch size where tuned (default: computed)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds before a client is killed")
    ap.add_argument("--keep-failed", action="store_true",
                    help="keep the files of a run that did not verify")
    ap.add_argument("--out", default="", help="results directory (default BUILD/bench)")
    ap.add_argument("--build", default=os.path.join(bench.ROOT, "build"))
    a = ap.parse_args(argv)
    build = os.path.abspath(a.build)
    out_dir = os.path.abspath(a.out or os.path.join(build, "bench"))
    for tool in ("embedpipe", "fake_provider", "verify_embeddings"):
        if not os.access(os.path.join(build, tool), os.X_OK):
            die("%s/%s is not built" % (build, tool))
    names = [s.name for s in SCENARIOS] if a.scenario == "all" else a.scenario.split(",")
    unknown = set(names) - {s.name for s in SCENARIOS}
    if unknown:
        die("unknown scenario %s" % ", ".join(sorted(unknown)))
    clients = [c for c in a.clients.split(",") if c]
    if set(clients) - set(CLIENTS):
        die("unknown client %s" % ", ".join(sorted(set(clients) - set(CLIENTS))))
    scenarios = [s for s in SCENARIOS if s.name in names]
    need_peers = any(c != "embedpipe" for s in scenarios
                     for c in (clients or (CLIENTS if s.peers_default else ["embedpipe"])))
    if need_peers:
        ensure_peers()
    can_plot = ensure_gnuplot()
    os.makedirs(out_dir, exist_ok=True)

    realistic = Corpus(*bench.corpus(build, a.sections, a.seed, 0, a.long))
    clean = cleaned(realistic, build)
    corpora = {"realistic": realistic, "cleaned": clean}

    results = []
    report = ["# scripts/bench peers", "",
              "Command: `scripts/bench peers %s`" % " ".join(argv), "",
              "Machine: %d CPUs; load average at the start %.2f %.2f %.2f." % (
                  (os.cpu_count() or 0,) + os.getloadavg()), ""]
    print("\n".join(report))
    sys.stdout.flush()
    for sc in scenarios:
        corpus = corpora["cleaned" if sc.corpus.startswith("cleaned") else "realistic"]
        stats = corpus.stats(build)
        lb, how = lower_bound(a, sc, stats)
        if sc.peer_batch == "max":
            batch = MAX_INPUTS
        else:
            batch = a.peer_batch or tuned_batch(corpus.stats(build)["raw_tokens"])
        runs = [(c, corpus, stats, c, 0) for c in
                (clients or (CLIENTS if sc.peers_default else ["embedpipe"]))]
        if sc.name == "10x":
            big = Corpus(*bench.corpus(build, stats["records"] * a.scale, a.seed, 0, 0))
            big_stats = big.stats(build)
            # A client-bound run's peak RSS moves with timing: the read window
            # is nearly empty while the server keeps up and fills when it falls
            # behind. So each size runs --rss-runs times and the largest peaks
            # are compared, and once with a stalled request, which fills it.
            def label(client, scale, k):
                name = "%s %dx" % (client, scale)
                return name if a.rss_runs == 1 else "%s #%d" % (name, k)
            ks = range(1, a.rss_runs + 1)
            clients_10x = [c for c, _, _, _, _ in runs]
            runs = ([(c, corpus, stats, label(c, 1, k), 0) for c in clients_10x for k in ks]
                    + [(c, big, big_stats, label(c, a.scale, k), 0)
                       for c in clients_10x for k in ks])
            # A stall on the peers' side would only wait out their timeouts.
            if a.rss_stall and "embedpipe" in clients_10x:
                runs += [("embedpipe", corpus, stats, "embedpipe 1x stalled", a.rss_stall),
                         ("embedpipe", big, big_stats, "embedpipe %dx stalled" % a.scale,
                          a.rss_stall)]
        rows = []
        for client, corp, st, label, stall in runs:
            log("%s: %s" % (sc.name, label))
            rows.append(run_client(bench, a, build, sc, client, corp, st, batch, label, stall))
        head = ["## %s: %s" % (sc.name, sc.what), "",
                "%d valid records, %d tokens (%d more over 8191 tokens); server: %s; -j %d; "
                "peers' batch %d." % (stats["records"], stats["tokens"], stats["long"],
                                      " ".join(server_args(a, sc)) or "no latency",
                                      a.concurrency, batch),
                "Lower bound: %s s (%s)." % ("%.1f" % lb if lb else "-", how), "",
                TABLE_HEAD]
        body = [fmt_row(r, lb if sc.name != "10x" else None) for r in rows]
        notes = ["", *("%s failed: %s" % (r["client"], r["failure"]) for r in rows if r["failure"])]
        png = plot(sc.name, rows, lb, out_dir) if can_plot else None
        if png:
            notes.append("Plot: %s" % png)
        text = head + body + notes + [""]
        print("\n".join(text))
        sys.stdout.flush()
        report += text
        entry = {"name": sc.name, "lower_bound": lb, "bound_how": how, "rows": rows,
                 "records": stats["records"], "tokens": stats["tokens"], "batch": batch}
        if sc.tpm:
            entry["tpm"] = a.tpm
            entry["tpm_bound"] = max(0.0, (stats["tokens"] - a.tpm) / (a.tpm / 60.0))
        results.append(entry)
    g = goals(results)
    tail = ["## Goals", ""] + g + ["",
                                   "Load average at the end %.2f %.2f %.2f." % os.getloadavg()]
    print("\n".join(tail))
    report += tail
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write("\n".join(report) + "\n")
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    bad = [r for s in results for r in s["rows"]
           if r["client"].startswith("embedpipe") and r["verified"] != "yes"]
    return 1 if bad else 0
