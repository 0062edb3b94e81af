// The OpenAI Batch API mode (--batch-api): each request the batcher forms
// becomes one line of a JSONL file that is uploaded (POST /files, purpose
// "batch"), run as a batch job (POST /batches on /v1/embeddings, 24h window),
// polled with backoff until it ends, and whose output and error files are
// turned back into the BatchResult values the scheduler would have produced,
// so the rest of the pipeline (journal, reorder buffer, writers) is the same.
//
// Memory that does not grow with the input: the runner works in two passes
// over the same requests. Collecting: each request is written, as it is
// formed, to an upload file on disk beside the checkpoint (`<checkpoint>.
// batch.upload-N`, mode 0600, removed once its job runs), which is sent from
// disk; each ended job's output and error files are downloaded to disk
// (`.output-N`, `.errors-N`) and indexed: for each request of this run,
// where its result line lies. Nothing per record is held, only per request
// its custom_id and that place. Answering (Replay): the pipeline reads its
// input again and forms the same requests, and each Submit is answered at
// once from its line on disk, so that results reach the journal and the
// output in input order, a few at a time, as in a normal run.
//
// Resuming. Each request's custom_id is a digest of its texts' journal keys
// (which cover the model and every other setting that changes a vector), so
// the same input under the same settings gives the same ids whatever the
// timing. The ids of each uploaded file and created job are kept, with the
// custom_ids they hold, in a sidecar file `<checkpoint>.batch`; a rerun maps
// its requests onto the stored jobs by custom_id and polls those instead of
// uploading again; only requests no stored job holds go into new files.
// A file kept without a job id (killed between the upload and the answer to
// POST /batches), or a POST /batches whose answer was not read, is looked
// for among the newest 100 jobs (GET /batches) before a job is created for
// it, so that a job the server made is polled, not made and paid twice.
// Likewise every file is looked for, by its name (a digest of its content)
// and size, among the newest 100 batch files (GET /files) before it is
// uploaded: one whose upload's answer was lost is not uploaded again.
//
// How a job ends. completed: every request's line is read from the output
// and error files; a line with a non-200 response or an `error` rejects its
// records. failed (the file did not validate): every request is rejected
// with the job's `errors`. expired, or cancelled (by someone else: the
// runner never cancels a job): the requests the job finished are read as
// for completed, the rest rejected with the API's reason, so a rerun with
// the same checkpoint sends only those, in a new job.
//
// The batch queue limit. OpenAI bounds the input tokens an organization
// may have enqueued in batch jobs per model; a job created over it is
// answered 200 and then fails with token_limit_exceeded, having run
// nothing. That is not a rejection: the file is kept (each upload file
// stays on disk until its job runs) and a job is created for it again once
// one of this run's jobs has ended, or, when none of ours runs (others'
// jobs fill the queue), after a wait on the poll schedule. The message
// states the limit ("Limit: 3,000,000 enqueued tokens"); from then on a job
// is not created while this run's running jobs and the file would pass it,
// files formed later hold at most that many tokens, and a file that alone
// holds more is split, at request lines, into files within it, uploaded
// like any other (the sidecar drops the old one). Requests are answered by
// custom_id wherever their line went.
//
// Why a sidecar and not a record in the journal: the journal is an
// append-only log of vectors that compaction rewrites to what one run used
// and that other processes read under a shared lock; job ids are a little
// mutable state (a file id, then a job id), needed only until the job's
// results are journaled, and then dropped. The sidecar is replaced
// atomically (temporary file, fsync, rename, fsync of the directory) after
// each upload and each job creation, before the run goes on.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "app/run_stats.h"
#include "input/record.h"
#include "journal/digest.h"
#include "providers/codec.h"
#include "transport/clock.h"
#include "transport/scheduler.h"
#include "transport/transport.h"

/// What one input file of a batch job may hold. The first three are the
/// API's; max_inputs is lowered further (LimitsForOutput) to keep one job's
/// output file under 256 MiB: it goes to disk, not memory, but a download
/// that fails is fetched again from its start.
struct BatchFileLimits {
  size_t max_requests = 50000;
  size_t max_inputs = 50000;       ///< Embedding inputs over all requests.
  size_t max_bytes = 200u << 20;
  /// Input tokens: the batch queue limit, once known (a file over it can
  /// never run).
  uint64_t max_tokens = UINT64_MAX;
};

/// The API's limits with max_inputs lowered so that the output file of one
/// job stays under 256 MiB: `dims` per vector (0: the largest model's 3072),
/// as base64 (4/3 bytes per byte) or decimal floats (up to ~12 bytes each).
BatchFileLimits LimitsForOutput(int dims, bool base64);

/// "r" and 32 hex digits: a digest of each record's key and piece number.
std::string RequestCustomId(const Batch& batch);

/// Appends one input line (newline included) for the embeddings request
/// with JSON body `body`.
void AppendRequestLine(std::string_view custom_id, std::string_view body,
                       std::string* out);

/// What one JSONL input file being formed holds (its lines are on disk).
struct RequestFile {
  std::vector<std::string> custom_ids;
  size_t inputs = 0;
  uint64_t bytes = 0;
  uint64_t tokens = 0;
};

/// Packs request lines, in order, into files within the limits.
class RequestFileBuilder {
 public:
  explicit RequestFileBuilder(BatchFileLimits limits) : limits_(limits) {}

  /// Adds a line of `line_bytes` (a request of `inputs` inputs and
  /// `tokens` tokens). When it does not fit in the open file, that file is
  /// first moved to *closed and true returned: the line starts the next file.
  bool Add(std::string custom_id, size_t line_bytes, size_t inputs,
           uint64_t tokens, RequestFile* closed);

  /// Moves the open file, if it has any line, to *closed.
  bool Flush(RequestFile* closed);

  void set_max_tokens(uint64_t tokens) { limits_.max_tokens = tokens; }

 private:
  BatchFileLimits limits_;
  RequestFile open_;
};

/// The fields of a Batch object that the runner acts on.
struct BatchJobStatus {
  std::string id;
  std::string status;  ///< validating, in_progress, finalizing, completed...
  std::string output_file_id;
  std::string error_file_id;
  std::string errors;  ///< errors.data[].message joined, if any.
  /// It failed with token_limit_exceeded: the batch queue was full.
  bool queue_full = false;
  uint64_t queue_limit = 0;  ///< The limit its message states; 0: none.
  uint64_t total = 0, completed = 0, failed = 0;

  /// completed, failed, expired or cancelled: nothing more will change.
  bool Ended() const;
};

/// Reads the `id` of a File object. False, with *err, when there is none.
bool ParseFileObject(std::string_view json, std::string* id, std::string* err);

/// Reads a Batch object. False, with *err, when it has no id or status.
bool ParseBatchObject(std::string_view json, BatchJobStatus* out,
                      std::string* err);

/// Finds in a list of File objects (GET /files) the one named `filename`
/// of `bytes` bytes: its *id, or an empty *id when there is none. False,
/// with *err, when the list cannot be read.
bool FindFileNamed(std::string_view list, std::string_view filename,
                   uint64_t bytes, std::string* id, std::string* err);

/// The figure of "Limit: 3,000,000 enqueued tokens" in a token_limit_exceeded
/// message; 0 when there is none.
uint64_t ParseQueueLimit(std::string_view message);

/// What to do with a job of `tokens` tokens not yet created, while this
/// run's running jobs hold `enqueued` tokens, under the batch queue limit
/// `limit` (0: not known).
enum class QueueVerdict {
  kCreate,
  kWait,   ///< Until one of this run's jobs ends.
  kSplit,  ///< The file alone is over the limit: it can never run (whatever
           ///< is enqueued).
};
QueueVerdict QueueRule(uint64_t tokens, uint64_t enqueued, uint64_t limit);

/// Finds in a list of Batch objects (GET /batches) the one that runs
/// `file_id`, leaving out those refused for a full queue (queue_full): *out,
/// or *out with an empty id when there is none. False, with *err, when the
/// list cannot be read.
bool FindBatchOfFile(std::string_view list, std::string_view file_id,
                     BatchJobStatus* out, std::string* err);

/// One line of an output or error file.
struct ResultLine {
  std::string custom_id;
  long status_code = 0;  ///< response.status_code; 0 without a response.
  std::string body;      ///< response.body as JSON text, or empty.
  std::string error;     ///< error.message, or the body's error message.
};

/// Reads one line of an output or error file.
bool ParseResultLine(std::string_view line, ResultLine* out, std::string* err);

/// How long to wait before poll number `polls` (0-based) of a job: 250 ms,
/// doubling, at most 60 s.
int64_t PollDelayMs(int polls);

/// A multipart/form-data body with the fields purpose=batch and file
/// (`filename`, application/jsonl) separated by `boundary`: what goes
/// before the file's content, and after it.
std::string MultipartHead(std::string_view boundary, std::string_view filename);
std::string MultipartTail(std::string_view boundary);

/// A job as the sidecar file keeps it. batch_id is empty while the file is
/// uploaded but the job not yet created.
struct StoredJob {
  std::string file_id;
  std::string batch_id;
  std::vector<std::string> custom_ids;
};

/// The sidecar's content: one JSON object per job and line.
std::string FormatStoredJobs(const std::vector<StoredJob>& jobs);
bool ParseStoredJobs(std::string_view text, std::vector<StoredJob>* jobs,
                     std::string* err);

struct BatchApiConfig {
  std::string base_url;    ///< e.g. https://api.openai.com/v1
  std::string api_key;     ///< Empty: no Authorization header.
  std::string state_path;  ///< The sidecar file; the files on disk beside it.
  BatchFileLimits limits;
  int max_attempts = 8;    ///< Per HTTP call, against 429, 5xx and network.
};

/// Runs batches through the Batch API. The same event-loop surface as
/// Scheduler (Submit, Step, NextResult, ...), so the pipeline drives either.
class BatchApiRunner {
 public:
  /// All pointers must outlive the runner.
  BatchApiRunner(Transport* transport, const Clock* clock, const Codec* codec,
                 BatchApiConfig config);
  ~BatchApiRunner();
  BatchApiRunner(const BatchApiRunner&) = delete;
  BatchApiRunner& operator=(const BatchApiRunner&) = delete;

  /// Reads the sidecar, if there is one, to resume its jobs.
  bool Load(std::string* err);

  /// Collecting: adds `batch`'s request to a stored job that holds it, else
  /// to the upload file on disk. Answering: queues its result at once.
  void Submit(Batch batch);

  /// Input ended: the last file is uploaded; results may now be collected.
  void EndInput();

  /// Every job ended (outstanding() is 0) and its results are on disk: from
  /// now on Submit answers the same requests, submitted again, from them.
  void Replay();
  bool replaying() const { return replaying_; }

  /// Starts whatever is due (uploads, job creations, polls, downloads),
  /// waits at most `max_wait_ms` for a transfer or `watch_fd`, and handles
  /// every finished transfer.
  void Step(int max_wait_ms, int watch_fd, bool* fd_ready);

  bool NextResult(BatchResult* out);

  /// Collecting: batches submitted whose job has not ended. Answering:
  /// batches submitted and not yet returned by NextResult.
  size_t outstanding() const { return outstanding_; }
  size_t in_flight() const { return transport_->active(); }
  void StopStarting();
  void CancelInFlight() { transport_->CancelAll(); }
  bool fatal() const { return !fatal_message_.empty(); }
  const std::string& fatal_message() const { return fatal_message_; }
  uint64_t requests() const { return http_requests_; }
  uint64_t uploads() const { return uploads_; }
  /// The jobs created, by status, with their request_counts as last polled.
  BatchJobCounts JobCounts() const;

  /// Every job's results were handed out and journaled: the sidecar and the
  /// upload and result files beside it go, those of a killed run too.
  bool Forget(std::string* err);

  /// The upload file of job number `n`, and its output or error file.
  std::string UploadPath(size_t n) const;
  std::string ResultPath(size_t n, bool error_file) const;

 private:
  // kFindFile: GET /files for the file, before POST /files (an earlier
  // run's, or this run's whose answer was not read, may have stored it).
  // kFindJob: GET /batches for a job of the file, before POST /batches
  // when an earlier one may have created it without the answer being read.
  enum class Stage { kFindFile, kUpload, kFindJob, kCreate, kPoll, kOutput, kErrors, kDone };
  struct Job {
    StoredJob stored;
    std::string name;        // "embedpipe-" and a digest of the content.
    size_t inputs = 0;
    uint64_t bytes = 0;      // Of its upload file.
    uint64_t tokens = 0;     // Of its requests this run submitted.
    // Its upload file, UploadPath(n), is this run's and on disk: kept
    // until its job runs, so that it can be split.
    bool local = false;
    // Its last job was refused for a full queue while `ends_seen` of this
    // run's jobs had ended: it waits for another to end.
    bool refused = false;
    uint64_t ends_seen = 0;
    // Waits after its refusals while none of this run's jobs ran, since
    // one of them last ended: each wait is longer (PollDelayMs).
    int queue_waits = 0;
    Stage stage = Stage::kFindFile;
    bool busy = false;       // A transfer is under way.
    int polls = 0;
    int failures = 0;        // Consecutive retryable failures.
    int64_t not_before_ms = 0;
    BatchJobStatus status;
    size_t wanted = 0;       // Of its requests, those this run submitted.
    int result_fds[2] = {-1, -1};  // Output and error file, while answering.
  };
  // Where the result line of a request this run submitted lies.
  enum class Found : uint8_t { kNowhere, kOutput, kErrors };
  struct Place {
    uint32_t job = 0;
    Found found = Found::kNowhere;
    uint16_t inputs = 0;  // Of its request (at most the provider's 2048).
    uint32_t length = 0;
    uint32_t tokens = 0;  // Of its request, for a split.
    uint64_t offset = 0;
  };

  void NewJob(RequestFile file);
  void AddLine(const std::string& custom_id, Place* place);
  void Refused(Job* job, int64_t now);
  uint64_t Enqueued() const;
  bool Blocked(const Job& job) const;
  bool Splittable(const Job& job) const;
  void Split(size_t index);
  void DropUpload(Job* job);
  bool WriteLine(const std::string& line);
  void StartDue(int64_t now);
  HttpRequest MakeRequest(const Job& job, size_t index) const;
  void Finished(size_t index, const HttpResponse& response);
  bool Advance(Job* job, const std::string& body, std::string* err);
  void Index(Job* job, bool error_file);
  void Answer(BatchResult* result);
  void Resolve(const Job& job, ResultLine* line, BatchResult* result) const;
  void ReportEnd(const Job& job) const;
  void EndJob(Job* job);
  void SaveState();
  int64_t NextDueMs() const;

  Transport* transport_;
  const Clock* clock_;
  const Codec* codec_;
  BatchApiConfig config_;
  RequestFileBuilder builder_;
  int upload_fd_ = -1;  // The open upload file, job number jobs_.size().
  Sha256 upload_hash_;  // Of what upload_fd_ holds so far.
  std::string line_;    // The request line being written.
  std::vector<Job> jobs_;
  std::unordered_map<std::string, size_t> stored_owner_;  // custom_id -> job
  std::unordered_map<std::string, Place> places_;         // by custom_id
  std::deque<BatchResult> results_;
  bool input_ended_ = false;
  bool replaying_ = false;
  bool stopped_ = false;
  uint64_t queue_limit_ = 0;  // The batch queue limit; 0: not known.
  uint64_t ends_ = 0;         // Jobs of this run that ended (not refused).
  size_t outstanding_ = 0;
  uint64_t http_requests_ = 0;
  uint64_t uploads_ = 0;
  std::string fatal_message_;
};
