#!/usr/bin/env python3
"""Kill test of --batch-api: SIGKILL `embedpipe --batch-api --checkpoint J`
in every phase of its jobs, rerun with the same J, and check that the run
that completes writes the bytes of an uninterrupted normal run, with nothing
in --errors and exit status 0, and that over all the runs the server saw
exactly one upload and one job per request file.

The kills are seeded: KILL_SEED=S runs another schedule (default 1, so the
suite's outcome does not change from run to run; KILL_SEED=random draws one
and prints it).
Every phase gets KILLS_PER_PHASE kills; the schedule shuffles them into
chains of one to three kills, in phase order, each followed by a run that
completes, against a server of its own.

A phase is reached without timing: the fake server holds the Nth call of a
kind (POST /fake/hold/CALL/N; or carries it out and holds its answer,
/fake/lose/CALL/N) and logs it once every call before it is answered, or
the output begins in stdout, a pipe of one page the test does not read, so
that the writer blocks. Then the test waits until the job-id sidecar
records every file and job the server made but a lost one (the client was
sent those answers: it must keep them before going on), and kills. A phase
is one entry of PHASES; one that needs the input held open (the upload file
being written as the input is read) feeds the input itself in its reach
function.
"""

import fcntl
import json
import os
import random
import select
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Server, base_args, check, corpus, eq, main, run, spawn,  # noqa: E402
                     test, tmpdir)

KILLS_PER_PHASE = 3
DIMS = 16
# A job validates for 300 ms, runs for 300 ms: a fresh job's first poll
# (250 ms after its creation) finds it validating, the second completed.
SERVER_ARGS = ("--shuffle", "--batch-delay-ms", "300")
# Flags of every run, normal or not.
RUN_ARGS = ("--batch-inputs", "10")
# The smallest pipe (a page): the output phase needs little output to
# block the writer.
PIPE_BYTES = 4096


def calls(entries, what):
    return [e for e in entries if e.get("batch_api") == what]


def stored_jobs(sidecar):
    """The sidecar's jobs, or None when there is none. Checks that it is
    whole (it is replaced by rename, never written in place) and 0600."""
    try:
        with open(sidecar) as f:
            text = f.read()
            mode = os.fstat(f.fileno()).st_mode & 0o777
    except FileNotFoundError:
        return None
    eq(mode, 0o600, "mode of the job-id sidecar")
    check(text.endswith("\n"), "sidecar ends with a whole line: %r" % text[-200:])
    return [json.loads(line) for line in text.splitlines()]


class Run:
    """One run of embedpipe that the test kills: what a phase's reach
    function works with."""

    def __init__(self, srv, p, data, holds_before, sidecar):
        self.srv, self.p, self.data = srv, p, data
        self.holds_before = holds_before
        self.upload_file = sidecar + ".upload-0"

    def feed_all(self):
        self.p.stdin.write(self.data)
        self.p.stdin.close()

    def wait_hold(self):
        """Until the server holds the call it was told to."""
        self.srv.wait_for(lambda es: len(calls(es, "hold")) > self.holds_before,
                          what="the held call")

    def wait_output(self):
        """Until the output has begun in stdout, a pipe of one page that the
        test does not read: as the output is longer, the writer cannot end
        and blocks. Then the server holds every further call, as after a
        held one."""
        ready, _, _ = select.select([self.p.stdout], [], [], 30)
        check(ready, "no output")
        self.srv.control("freeze")


def poll_until(cond, p, what, timeout=30):
    """Waits for a condition on files the run writes (no event to wait on):
    checks it every few milliseconds; fails if the run ends first."""
    deadline = time.monotonic() + timeout
    while not cond():
        check(p.poll() is None, "embedpipe exited (status %s) before %s" % (p.returncode, what))
        check(time.monotonic() < deadline, "timed out waiting for " + what)
        time.sleep(0.005)


class Phase:
    """hold: the server call whose Nth instance is held, or None; with
    lose, the call takes effect and only its answer is held. reach: returns
    once the run is in the phase. left(log, files): how many calls of that
    kind the next run is sure to make, given the server's log."""

    def __init__(self, name, hold, reach, left=lambda log, files: 1, lose=False):
        self.name, self.hold, self.reach, self.left = name, hold, reach, left
        self.lose = lose


def held(r):
    r.feed_all()
    r.wait_hold()


def writing(r):
    """Half the input through stdin, which stays open: the requests formed
    so far are in the first upload file, the rest still to come."""
    r.p.stdin.write(r.data[:len(r.data) // 2])
    r.p.stdin.flush()
    poll_until(lambda: os.path.exists(r.upload_file) and os.path.getsize(r.upload_file) > 0,
               r.p, "the upload file to be written")


def written(r):
    r.feed_all()
    r.wait_output()


def uploads_left(log, files):
    return files - len(calls(log, "upload"))


def jobs_left(log, files):
    return files - len(calls(log, "create"))


PHASES = [
    # The first upload file being written as the input is read.
    Phase("write-file", None, writing),
    # POST /files under way: the server has the body, stores nothing.
    Phase("upload", "upload", held, uploads_left),
    # The file stored, the process killed before it read the answer.
    Phase("upload-lost", "upload", held, uploads_left, lose=True),
    # The file uploaded and kept in the sidecar, POST /batches unanswered.
    Phase("create", "create", held, jobs_left),
    # The job created, the process killed before it read the answer.
    Phase("create-lost", "create", held, jobs_left, lose=True),
    Phase("poll", "retrieve", held),
    Phase("download", "content", held),
    Phase("output", None, written),
]


def schedule(rng, files):
    """Chains of one to three kills, each in phase order, every phase
    KILLS_PER_PHASE times over all; a phase whose held call takes effect
    at most once per request file in a chain."""
    kills = [ph for ph in PHASES for _ in range(KILLS_PER_PHASE)]
    rng.shuffle(kills)
    chains = [[]]
    size = rng.randint(1, 3)
    for ph in kills:
        if len(chains[-1]) == size or (ph.lose and chains[-1].count(ph) == files):
            chains.append([])
            size = rng.randint(1, 3)
        chains[-1].append(ph)
    return [sorted(chain, key=PHASES.index) for chain in chains]


def wait_recorded(srv, sidecar, p, since):
    """Until the sidecar names every file uploaded and every job created,
    but one whose answer the run never got (the server's state is final:
    it holds every call now). None is right before the first upload is
    kept, and after a complete collection."""
    lost = {e["lost"] for e in calls(srv.entries[since:], "hold") if "lost" in e}
    uploads = {e["file_id"] for e in calls(srv.entries, "upload")} - lost
    jobs = {e["batch_id"] for e in calls(srv.entries, "create")} - lost

    def recorded():
        stored = stored_jobs(sidecar)
        if stored is None:
            return not uploads or bool(jobs)
        return (uploads <= {j["file_id"] for j in stored} and
                jobs <= {j["batch_id"] for j in stored})
    poll_until(recorded, p, "the sidecar to record the server's files and jobs")


def kill_at(phase, srv, data, args, sidecar, files, rng, d):
    nth = rng.randint(1, max(1, phase.left(srv.entries, files)))
    if phase.hold:
        srv.control("%s/%s/%d" % ("lose" if phase.lose else "hold", phase.hold, nth))
    since = len(srv.entries)
    holds_before = len(calls(srv.entries, "hold"))
    with open(os.path.join(d, "stderr-%s" % phase.name), "ab") as err:
        p = spawn(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
    fcntl.fcntl(p.stdout.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    phase.reach(Run(srv, p, data, holds_before, sidecar))
    check(len(calls(srv.entries, "upload")) <= files, "a second upload of a request file")
    check(len(calls(srv.entries, "create")) <= files, "a second job for a request file")
    wait_recorded(srv, sidecar, p, since)
    p.kill()
    p.stdout.read()
    p.wait()
    srv.control("release")
    stored_jobs(sidecar)  # whole and 0600, if there
    return "%s#%d" % (phase.name, nth)


class Reference:
    """The corpus, the output of a normal run, and the request files and
    requests of an uninterrupted batch run."""

    def __init__(self):
        self.corpus = corpus(120, seed=47)
        with Server(*SERVER_ARGS) as srv:
            normal = run(base_args(srv, DIMS, *RUN_ARGS, self.corpus.path))
        normal.expect_rc(0)
        self.out = normal.out
        check(len(self.out) > PIPE_BYTES, "output longer than the pipe that holds it")
        with Server(*SERVER_ARGS) as srv:
            batch = run(base_args(srv, DIMS, *RUN_ARGS, "--batch-api", "--checkpoint",
                                  os.path.join(tmpdir(), "ckpt"), self.corpus.path))
            log = srv.stop()
        batch.expect_rc(0)
        eq(batch.out, self.out, "output of an uninterrupted batch run")
        self.files = len(calls(log, "upload"))
        self.requests = sum(e["requests"] for e in calls(log, "create"))


def episode(ref, chain, rng, seed):
    """Kills a run at each phase of `chain` in turn against one server,
    then runs to completion and checks the outcome over all the runs."""
    e = tmpdir("episode")
    ckpt = os.path.join(e, "ckpt")
    sidecar = ckpt + ".batch"
    done = []
    try:
        with Server(*SERVER_ARGS) as srv:
            args = base_args(srv, DIMS, *RUN_ARGS, "--batch-api", "--checkpoint", ckpt,
                             "--errors", os.path.join(e, "errors"))
            for phase in chain:
                done.append(phase.name)
                done[-1] = kill_at(phase, srv, ref.corpus.data, args, sidecar, ref.files, rng, e)
            last = run(args, stdin=ref.corpus.data)
            log = srv.stop()
        last.expect_rc(0)
        eq(last.out, ref.out, "output of the run that completed")
        eq(last.errors_text, "", "--errors")
        uploads, jobs = calls(log, "upload"), calls(log, "create")
        eq(len(uploads), ref.files, "uploads over all runs")
        eq(len(jobs), ref.files, "jobs created over all runs")
        eq(sorted(j["input_file_id"] for j in jobs), sorted(u["file_id"] for u in uploads),
           "the files the jobs run")
        eq(sum(j["requests"] for j in jobs), ref.requests, "requests in the jobs")
        check(not any("texts" in x for x in log), "nothing went to /v1/embeddings")
        check(not os.path.exists(sidecar), "job ids dropped after the run that completed")
    except AssertionError as ex:
        raise AssertionError("KILL_SEED=%d, kills %s (files in %s): %s"
                             % (seed, " ".join(done), e, ex))
    print("  killed at %s, then completed" % " ".join(done), flush=True)


@test
def a_run_killed_in_any_phase_resumes_without_a_second_upload_or_job():
    seed = os.environ.get("KILL_SEED", "1")
    seed = random.randrange(1 << 31) if seed == "random" else int(seed)
    print("KILL_SEED=%d" % seed, flush=True)
    rng = random.Random(seed)
    ref = Reference()
    for chain in schedule(rng, ref.files):
        episode(ref, chain, rng, seed)


if __name__ == "__main__":
    main()
