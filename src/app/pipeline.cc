#include "app/pipeline.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <iterator>
#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <unistd.h>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "app/diag.h"
#include "app/exit_status.h"
#include "app/interrupt.h"
#include "app/price_table.h"
#include "app/progress.h"
#include "app/run_stats.h"
#include "app/summary.h"
#include "input/json_text.h"
#include "input/line_reader.h"
#include "input/normalizer.h"
#include "input/record_parser.h"
#include "input/shard.h"
#include "journal/journal.h"
#include "journal/key_set.h"
#include "journal/known_ids.h"
#include "journal/private_file.h"
#include "output/copy_text_writer.h"
#include "output/output.h"
#include "output/output_worker.h"
#include "output/record_writer.h"
#include "output/reorder_buffer.h"
#include "providers/batch_api.h"
#include "providers/provider.h"
#include "tokenize/overlong.h"
#include "tokenize/token_counter.h"
#include "transport/batcher.h"
#include "transport/scheduler.h"

namespace {

// Reading pauses while this much text and vector data per request slot
// (-j on each endpoint) is held in memory, so memory stays bounded however
// long the input is.
// A full batch is at most 1.2 MB of text (300,000 tokens by the bytes/4
// estimate) and, at 1536 dimensions, about 3 MB of vectors: this holds the
// batches in flight, those answered out of order, and the next ones being
// filled. More only raises peak RSS: against a 250 ms + 20 ms/1,000-token
// server at -j 5 (scripts/bench peers, cleaned corpus), 8 MiB per slot gave
// 97.5 MB peak RSS and 5 MiB 78-82 MB, both 50.4-50.9 s and 42-43 batches;
// at 4 MiB a batch closed early for lack of room.
constexpr size_t kHeldBytesPerRequest = 5u << 20;
// Without --errors, this many rejected records are described on stderr; the
// rest are only counted.
constexpr uint64_t kMaxErrorMessages = 20;
// The longest the loop waits with nothing to do; bounds how late it notices
// a signal.
constexpr int kMaxWaitMs = 200;
// After SIGINT, SIGTERM or an error that stops the run (bad key, quota),
// requests in flight get this long to finish (what they bring is paid for)
// before they are abandoned, so the run ends within about two seconds even
// with a hung connection.
constexpr int64_t kDrainMs = 1500;
// When input pauses this long, the records already read are sent without
// waiting for a full batch, so `tail -f log | embedpipe` keeps moving.
constexpr int64_t kIdleFlushMs = 1000;

SchedulerConfig MakeSchedulerConfig(const Options& o, const Clock& clock) {
  SchedulerConfig c;
  c.concurrency = o.concurrency;
  c.max_attempts = o.max_attempts;
  c.backoff.max_wait_ms = static_cast<int64_t>(o.max_retry_wait_s * 1000);
  c.max_retry_time_ms = static_cast<int64_t>(o.max_retry_time_s * 1000);
  c.rpm = o.rpm;
  c.tpm = o.tpm;
  c.seed = static_cast<uint64_t>(clock.NowMs());  // jitter differs per run
  return c;
}

// One codec per endpoint, each building requests rooted at its own URL.
std::vector<std::unique_ptr<Codec>> NewCodecs(const Options& o,
                                              const std::string& api_key) {
  std::vector<std::unique_ptr<Codec>> codecs;
  for (const std::string& url : EndpointUrls(o))
    codecs.push_back(NewCodec(o, url, api_key));
  return codecs;
}

std::vector<SchedulerEndpoint> SchedulerEndpoints(
    const Options& o, const std::vector<std::unique_ptr<Codec>>& codecs) {
  std::vector<std::string> urls = EndpointUrls(o);
  std::vector<SchedulerEndpoint> endpoints;
  for (size_t i = 0; i < urls.size(); ++i)
    endpoints.push_back({urls[i], codecs[i].get()});
  return endpoints;
}

struct KeyHash {
  size_t operator()(const std::array<uint8_t, 32>& key) const {
    size_t h;  // a SHA-256 prefix is already uniform
    std::memcpy(&h, key.data(), sizeof h);
    return h;
  }
};

class Pipeline {
 public:
  Pipeline(const Options& options, const std::string& api_key,
           Transport* transport, const Clock* clock, int out_fd,
           ProgressMode progress)
      : options_(options), key_sent_(!api_key.empty()), clock_(clock),
        out_fd_(out_fd), codecs_(NewCodecs(options, api_key)),
        scheduler_(transport, SchedulerEndpoints(options, codecs_), clock,
                   MakeSchedulerConfig(options, *clock)),
        batcher_(BatchLimits{static_cast<uint32_t>(options.batch_inputs),
                             static_cast<uint64_t>(options.batch_tokens)}),
        // Enough lines for a request in every slot plus as many again
        // waiting, so the writer's head-of-line wait rarely stalls reading.
        max_held_lines_(static_cast<size_t>(options.batch_inputs) *
                        static_cast<size_t>(RequestSlots(options) * 2 + 2)),
        max_held_bytes_(kHeldBytesPerRequest *
                        static_cast<size_t>(RequestSlots(options))),
        progress_(progress,
                  static_cast<int64_t>(options.progress_interval_s * 1000)) {
    if (options.batch_api && !options.checkpoint.empty() &&
        !options.dry_run && !options.count_tokens) {
      BatchApiConfig config;
      config.base_url = options.base_url;
      config.api_key = api_key;
      config.state_path = options.checkpoint + ".batch";
      config.limits = LimitsForOutput(options.dimensions,
                                      options.encoding == "base64");
      config.max_attempts = options.max_attempts;
      // One endpoint (cli.cc refuses a pool with --batch-api).
      batch_api_ = std::make_unique<BatchApiRunner>(
          transport, clock, codecs_.front().get(), std::move(config));
    }
  }

  int Run();

 private:
  bool Setup();
  bool OpenNextInput();
  bool Collecting() const { return batch_api_ && !batch_api_->replaying(); }
  void StartReplay();
  void SkipLine(uint64_t seq);
  void Spill(std::string_view line);
  std::string SpillPath(size_t input) const;
  void ReadInput();
  void EndInput();
  void HandleLine(std::string_view line, uint64_t line_number);
  void Add(Record record);
  void AddPieces(Record record, uint32_t cap);
  void Truncate(Record* record, uint32_t cap);
  void CutAgain(Record record, const BatchResult& refused);
  void ResolvePiece(const Record& part, const float* vector, size_t dims,
                    const std::string* error);
  bool AnswerWithoutRequest(Record* record);
  size_t NoteKnownId(ParseStatus status, uint64_t line_number);
  bool LeaveUnchanged(size_t known_entry, const Record& record);
  bool OwnsKnownId(size_t known_entry);
  bool Finished() const;
  bool WriteDeleted();
  void Embedded(const Record& record, const float* vector, size_t dims);
  void EmbedOne(Record record, const float* vector, size_t dims);
  void RejectRecord(Record* record, const std::string& field,
                    const std::string& reason);
  void SyncJournal();
  void Reject(uint64_t seq, uint64_t line, const std::string& source,
              std::string id_json,
              std::string field, std::string reason);
  void Submit(Batch batch);
  void RejectUnanswered();
  void ResolveUnsent(const Batch& batch);
  void ReleaseUnsent(uint64_t seq, const JournalKey& key);
  bool MeasureInput();
  void RefreshStats();
  void ShowProgress();
  void EndOutput();
  int Conclude();
  bool WriteStatsFile(int status);
  void CollectResults();
  bool WriteReleased();
  void WriteError(const RecordError& error);
  bool FlushOutputs();
  bool WantInput(size_t output_bytes) const;
  int Finish();

  const Options& options_;
  const bool key_sent_;  ///< For the hint when the API refuses the key.
  const Clock* clock_;
  const int out_fd_;
  std::unique_ptr<OutputWorker> output_;  ///< Writes to out_fd_.
  std::unique_ptr<FdOutput> errors_out_;
  std::vector<std::unique_ptr<Codec>> codecs_;  ///< One per endpoint.
  Scheduler scheduler_;
  // --batch-api: sends in place of scheduler_.
  std::unique_ptr<BatchApiRunner> batch_api_;
  Batcher batcher_;
  std::unique_ptr<RecordWriter> writer_;  ///< output_ has its own.
  RecordParser parser_;
  NormalizeConfig normalize_;
  std::unique_ptr<TokenCounter> counter_;
  ReorderBuffer reorder_;
  const size_t max_held_lines_;
  const size_t max_held_bytes_;

  size_t next_input_ = 0;
  int input_fd_ = -1;
  std::string input_name_;
  std::unique_ptr<LineReader> reader_;
  bool input_done_ = false;
  // --batch-api reads its input twice (batch_api.h). The first pass copies
  // an input it cannot read again (a pipe) to a spill file beside the
  // checkpoint, which the second reads; a redirected regular file on stdin
  // is read again from where it began.
  std::unique_ptr<FdOutput> spill_;
  int spill_fd_ = -1;
  std::vector<bool> spilled_;  // By input.
  off_t stdin_start_ = 0;
  RunStats collect_stats_;  // Before the first pass, which counts nothing.
  // The texts the first pass sent: in_flight_texts_ would take some 80
  // bytes a record, this 11 to 21.
  KeySet batch_sent_;
  uint64_t batch_records_ = 0;  // In the requests the first pass formed.
  // Keys of texts the jobs' results rejected, with the field and reason:
  // every later copy of one is rejected the same, as the first pass sent
  // it once.
  std::unordered_map<JournalKey, std::pair<std::string, std::string>, KeyHash>
      batch_rejected_;
  bool stopping_ = false;

  OverlongPolicy overlong_ = OverlongPolicy::kSplit;
  Shard shard_;
  // A record split into pieces, until every piece is answered.
  struct PendingSplit {
    Record record;  // Without its text.
    std::vector<std::vector<float>> vectors;
    std::vector<uint32_t> weights;
    size_t resolved = 0;
    std::string error;  // The first piece's failure, if any.
  };
  std::unordered_map<uint64_t, PendingSplit> splits_;
  std::vector<std::string_view> pieces_;
  std::vector<uint32_t> piece_tokens_;
  std::string stop_message_;  // Why --overlong fail stopped the run.
  // The server refused a text within --max-input-tokens as too long, and
  // a warning said so (once).
  bool warned_server_limit_ = false;

  std::unique_ptr<KeyMaker> keys_;

  // --known and --deleted (known_ids.h).
  std::unique_ptr<KnownIds> known_;
  int deleted_fd_ = -1;
  std::string id_text_;       // The line's id as the output writes it.
  bool numeric_ids_ = false;  // Some input id was a JSON number.
  bool ids_unreadable_ = false;  // Some line's id could not be read.
  // Why an input was not read to its end (gone, or a read error); its
  // unread lines may carry any id and any text.
  std::string unread_input_;
  std::unique_ptr<Journal> journal_;
  bool journal_dirty_ = false;  // Appended since the last Sync.
  // Texts sent and not yet answered, with the records of identical texts
  // read meanwhile, which get the same answer.
  std::unordered_map<std::array<uint8_t, 32>, std::vector<Record>, KeyHash>
      in_flight_texts_;
  std::string io_error_;  // The checkpoint failed: nothing more is written.
  // The reason given to each record not answered when the run stopped
  // early; without --errors they are counted, not described one by one.
  std::string unanswered_reason_;
  uint64_t unanswered_ = 0;
  uint64_t error_messages_ = 0;  // Rejected records described on stderr.
  // --dry-run: every distinct text read (about 64 bytes each).
  std::unordered_set<JournalKey, KeyHash> dry_run_texts_;

  uint64_t next_seq_ = 0;
  size_t held_bytes_ = 0;
  uint64_t tokens_formed_ = 0;  // In the batches submitted.
  ParsedRecord parsed_;
  std::string field_, reason_;

  std::vector<uint64_t> input_sizes_;  // When all inputs are regular files.
  int64_t start_ms_ = 0;
  int64_t last_input_ms_ = 0;
  int64_t drain_deadline_ms_ = 0;  // Once stopping: when to stop waiting.
  RunStats stats_;
  ProgressMeter progress_;
};

bool Pipeline::Setup() {
  std::string err;
  if (!options_.deleted_path.empty()) {
    // Emptied first, so that a list left by an earlier run is never taken
    // for this run's when this one writes none, however it ends.
    deleted_fd_ = open(options_.deleted_path.c_str(),
                       O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (deleted_fd_ < 0) {
      diag::Error(fmt::format("cannot write {}: {}", options_.deleted_path,
                              std::strerror(errno)));
      return false;
    }
    stats_.list_deleted = true;
  }
  RecordParserConfig parser_config;
  parser_config.id_field = options_.id_field;
  parser_config.text_field = options_.text_field;
  parser_config.carry_fields = options_.carry_fields;
  if (!parser_.Init(parser_config, &err)) {
    diag::Error(err);
    return false;
  }
  OutputConfig output;
  output.format = options_.format;
  output.vector = options_.vector;
  output.columns = options_.columns;
  output.carry_fields = options_.carry_fields;
  output.model = options_.model;
  output.id_field = options_.id_field;
  writer_ = NewRecordWriter(output, &err);
  if (!writer_) {
    diag::Error(err);
    return false;
  }
  output_ = std::make_unique<OutputWorker>(out_fd_,
                                           NewRecordWriter(output, &err));
  if (options_.count_tokens && options_.format != "jsonl") {
    diag::Error("--count-tokens writes JSON lines only; drop --format");
    return false;
  }
  normalize_.form = options_.normalize == "nfkc"   ? NormalForm::kNfkc
                    : options_.normalize == "none" ? NormalForm::kNone
                                                   : NormalForm::kNfc;
  normalize_.invalid_utf8 = options_.invalid_utf8 == "reject"
                                ? InvalidUtf8::kReject
                                : InvalidUtf8::kReplace;
  if (!options_.shard.empty() && !Shard::Parse(options_.shard, &shard_, &err)) {
    diag::Error(err);
    return false;
  }
  if (!ParseOverlongPolicy(options_.overlong, &overlong_)) {
    diag::Error("unknown --overlong policy " + options_.overlong);
    return false;
  }
  counter_ = NewTokenCounter(options_.model, options_.tokenizer,
                             AddedTokens(options_), &err);
  if (!counter_) {
    diag::Error(err);
    return false;
  }
  // Everything that changes a vector besides the normalized text, which the
  // key itself covers. The wire encoding does not: it is float32 either way.
  JournalConfig settings;
  settings.settings = {
      {"model", options_.model},
      {"dimensions", options_.dimensions ? std::to_string(options_.dimensions)
                                         : "native"},
      {"overlong", options_.overlong},
      {"max_input_tokens", std::to_string(options_.max_input_tokens)},
      {"tokenizer", std::string(counter_->name())}};
  for (auto& setting : ProviderSettings(options_))
    settings.settings.push_back(std::move(setting));
  keys_ = std::make_unique<KeyMaker>(settings);
  // A dry run reads the checkpoint, if there is one, to count what it
  // would answer, and leaves it as it is.
  bool read_journal = options_.dry_run && !options_.checkpoint.empty() &&
                      access(options_.checkpoint.c_str(), F_OK) == 0;
  if (read_journal || (!options_.checkpoint.empty() && !options_.count_tokens &&
                       !options_.dry_run)) {
    std::string notice;
    journal_ = read_journal ? Journal::OpenForReading(options_.checkpoint,
                                                      settings, &notice, &err)
                            : Journal::Open(options_.checkpoint, settings,
                                            &notice, &err);
    if (!notice.empty()) diag::Warning(notice);
    if (!journal_) {
      diag::Error(err);
      return false;
    }
    if (journal_->size() > 0)
      diag::Info(fmt::format("{} vectors in checkpoint {}",
                             GroupThousands(journal_->size()),
                             options_.checkpoint));
  }
  // Every input must be readable before a single token is paid for.
  // A directory passes access(R_OK) but fails its first read.
  for (const std::string& path : options_.inputs) {
    if (path == "-") continue;
    struct stat st;
    int error = access(path.c_str(), R_OK) != 0 ? errno
                : stat(path.c_str(), &st) != 0    ? errno
                : S_ISDIR(st.st_mode)             ? EISDIR
                                                  : 0;
    if (error) {
      diag::Error(fmt::format("cannot read {}: {}", path, std::strerror(error)));
      return false;
    }
  }
  if (!options_.errors_path.empty()) {
    int fd = open(options_.errors_path.c_str(),
                  O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      diag::Error(fmt::format("cannot write {}: {}", options_.errors_path,
                              std::strerror(errno)));
      return false;
    }
    errors_out_ = std::make_unique<FdOutput>(fd);
  }
  if (!options_.known_path.empty()) {
    known_ = std::make_unique<KnownIds>();
    if (!known_->Load(options_.known_path, &err)) {
      diag::Error("--known: " + err);
      return false;
    }
    stats_.known = true;
  }
  stats_.dry_run = options_.dry_run;
  stats_.checkpoint = !options_.checkpoint.empty();
  stats_.model = options_.model;
  if (options_.price >= 0) stats_.usd_per_million = options_.price;
  else LookupPrice(options_.model, &stats_.usd_per_million);
  if (options_.batch_api && !options_.count_tokens) {
    stats_.batch_api = options_.price < 0 && stats_.usd_per_million > 0;
    if (stats_.batch_api) stats_.usd_per_million /= 2;
  }
  if (batch_api_ && !batch_api_->Load(&err)) {
    diag::Error(err);
    return false;
  }
  MeasureInput();
  return true;
}

// Sizes the input for the progress line's share, when it can be known:
// every input a regular file (stdin included, as in `embedpipe < file`).
bool Pipeline::MeasureInput() {
  for (const std::string& path : options_.inputs) {
    struct stat st;
    int rc = path == "-" ? fstat(STDIN_FILENO, &st) : stat(path.c_str(), &st);
    if (rc != 0 || !S_ISREG(st.st_mode)) {
      input_sizes_.clear();
      return false;
    }
    input_sizes_.push_back(static_cast<uint64_t>(st.st_size));
    stats_.input_bytes_total += static_cast<uint64_t>(st.st_size);
  }
  return true;
}

bool Pipeline::OpenNextInput() {
  if (input_fd_ > STDIN_FILENO) close(input_fd_);
  reader_.reset();
  input_fd_ = -1;
  if (spill_) {
    if (!spill_->Flush())
      io_error_ = fmt::format("cannot write {}: {}", SpillPath(next_input_ - 1),
                              spill_->error());
    close(spill_fd_);
    spill_.reset();
  }
  if (next_input_ == options_.inputs.size()) return false;
  size_t input = next_input_++;
  input_name_ = options_.inputs[input];
  if (batch_api_ && batch_api_->replaying() && spilled_[input]) {
    input_fd_ = open(SpillPath(input).c_str(), O_RDONLY | O_CLOEXEC);
    if (input_fd_ < 0) {
      io_error_ = fmt::format("cannot read {}: {}", SpillPath(input),
                              std::strerror(errno));
      return false;
    }
  } else if (input_name_ == "-") {
    input_fd_ = STDIN_FILENO;
    if (batch_api_ && batch_api_->replaying() &&
        lseek(STDIN_FILENO, stdin_start_, SEEK_SET) != stdin_start_) {
      io_error_ = fmt::format("cannot read stdin again: {}", std::strerror(errno));
      return false;
    }
  } else {
    input_fd_ = open(input_name_.c_str(), O_RDONLY | O_CLOEXEC);
    if (input_fd_ < 0) {
      // Checked readable at start; it went away since. Say so and go on.
      if (unread_input_.empty())
        unread_input_ = fmt::format("cannot read {}: {}", input_name_,
                                    std::strerror(errno));
      diag::Error(unread_input_);
      ++stats_.rejected;
      return OpenNextInput();
    }
  }
  if (Collecting()) {
    struct stat st;
    spilled_.resize(options_.inputs.size());
    spilled_[input] = fstat(input_fd_, &st) != 0 || !S_ISREG(st.st_mode);
    if (input_name_ == "-" && !spilled_[input])
      stdin_start_ = lseek(STDIN_FILENO, 0, SEEK_CUR);
    if (spilled_[input]) {
      // Private as the journal: it holds the input's texts.
      int fd = OpenPrivateFile(SpillPath(input));
      if (fd < 0) {
        io_error_ = fmt::format("cannot write {}: {}", SpillPath(input),
                                std::strerror(errno));
        return false;
      }
      spill_fd_ = fd;
      spill_ = std::make_unique<FdOutput>(fd);
    }
  }
  reader_ = std::make_unique<LineReader>(input_fd_);
  return true;
}

std::string Pipeline::SpillPath(size_t input) const {
  return fmt::format("{}.batch.input-{}", options_.checkpoint, input);
}

// Copies a line of the first pass to the spill, as the second pass must
// read it: a line too long to hold as one too long again.
void Pipeline::Spill(std::string_view line) {
  std::string& out = spill_->buffer();
  if (reader_->too_long()) out.append(LineReader::kMaxLineBytes + 1, ' ');
  else out.append(line);
  out.push_back('\n');
  if (!spill_->MaybeFlush() && io_error_.empty())
    io_error_ = fmt::format("cannot write {}: {}", SpillPath(next_input_ - 1),
                            spill_->error());
}

// The first pass of --batch-api ended with every job's results on disk: the
// input is read again and each request answered from them (batch_api.h).
void Pipeline::StartReplay() {
  batch_api_->Replay();
  // Every record sent is about to be journaled (a split one's pieces count
  // each: a little more than needed).
  if (journal_) journal_->Reserve(journal_->size() + batch_records_);
  stats_ = collect_stats_;  // this pass counts every line again
  if (known_) known_->ForgetWritten();
  tokens_formed_ = 0;
  next_seq_ = 0;
  held_bytes_ = 0;
  batch_sent_ = KeySet();
  splits_.clear();
  next_input_ = 0;
  input_done_ = false;
  last_input_ms_ = clock_->NowMs();
  if (!OpenNextInput()) EndInput();
}

// Line `seq` has nothing to write. (The first pass of --batch-api writes
// nothing: it must not hold every line it passes.)
void Pipeline::SkipLine(uint64_t seq) {
  if (!Collecting()) reorder_.Skip(seq);
}

// Whether to read on while the output has `output_bytes` to format.
bool Pipeline::WantInput(size_t output_bytes) const {
  // With --batch-api the first pass holds no record (each goes to an upload
  // file); the second answers each request as it is formed, so only the
  // output's backlog holds memory, and the open batch must fill as it did
  // in the first pass whatever the window.
  if (batch_api_)
    return !input_done_ && !stopping_ &&
           (Collecting() || output_bytes < max_held_bytes_);
  // Batches waiting for a slot are ready already: reading further only
  // holds more. Two per slot are enough for the end of the input to be seen
  // while the slots still have work to share out (Scheduler::EndInput):
  // against the 250 ms + 20 ms/1,000-token server, with one per slot the
  // cleaned corpus took 50.3 s (peak RSS 62 MB), with two 49.9 s (71 MB),
  // the bound, as it did with only the 5 MiB a slot (78-82 MB). When the
  // server falls behind a client-bound run, this stops reading long before
  // the window would.
  size_t queue = 2 * static_cast<size_t>(RequestSlots(options_));
  return !input_done_ && !stopping_ &&
         held_bytes_ + output_bytes < max_held_bytes_ &&
         next_seq_ - reorder_.next_seq() < max_held_lines_ &&
         scheduler_.queued() < queue;
}

void Pipeline::ReadInput() {
  std::string err;
  LineReader::ReadStatus status = reader_->Fill(&err);
  std::string_view line;
  uint64_t line_number;
  while (!input_done_ && !stopping_ && reader_->NextLine(&line, &line_number)) {
    if (spill_) Spill(line);
    HandleLine(line, line_number);
  }
  if (status == LineReader::ReadStatus::kError) {
    std::string message = fmt::format("error reading {}: {}", input_name_, err);
    if (unread_input_.empty()) unread_input_ = message;
    diag::Error(message);
    ++stats_.rejected;
  }
  if (!input_done_ && (status == LineReader::ReadStatus::kEof ||
                       status == LineReader::ReadStatus::kError)) {
    if (!OpenNextInput()) EndInput();
  }
}

void Pipeline::EndInput() {
  input_done_ = true;
  Batch last;
  if (batcher_.Flush(&last)) Submit(std::move(last));
  if (batch_api_) batch_api_->EndInput();
  else scheduler_.EndInput();
}

void Pipeline::HandleLine(std::string_view line, uint64_t line_number) {
  uint64_t seq = next_seq_++;
  ParseStatus status;
  if (reader_->too_long()) {
    // Its bytes were dropped: an error of the line as a whole, without id.
    parsed_.id_json.clear();
    field_.clear();
    reason_ = fmt::format("line is longer than {} bytes", LineReader::kMaxLineBytes);
    status = ParseStatus::kError;
  } else {
    status = parser_.Parse(line, &parsed_, &field_, &reason_);
  }
  if (status == ParseStatus::kBlank) {
    SkipLine(seq);
    return;
  }
  // Before the shard's choice: a line of any shard may carry any id.
  size_t known_entry =
      known_ ? NoteKnownId(status, line_number) : KnownIds::kNotKnown;
  if (!shard_.all() && !(parsed_.id_json.empty()
                             ? shard_.OwnsLine(seq)
                             : shard_.OwnsId(parsed_.id_json))) {
    ++stats_.other_shards;
    SkipLine(seq);
    return;
  }
  ++stats_.read;
  switch (status) {
    case ParseStatus::kBlank:
      return;  // handled above
    case ParseStatus::kError:
      Reject(seq, line_number, input_name_, parsed_.id_json, field_, reason_);
      return;
    case ParseStatus::kRecord:
      break;
  }
  Record record;
  if (!Normalize(parsed_.text, normalize_, &record.text, &reason_)) {
    Reject(seq, line_number, input_name_, parsed_.id_json, options_.text_field, reason_);
    return;
  }
  record.seq = seq;
  record.line = line_number;
  record.source = static_cast<uint32_t>(next_input_ - 1);
  record.id_json = std::move(parsed_.id_json);
  record.carry_json = std::move(parsed_.carry_json);
  // A value the output format cannot carry (writer_->Accepts says which)
  // is refused here, before it costs a request.
  if (!writer_->Accepts(record, &field_, &reason_)) {
    Reject(seq, line_number, input_name_, std::move(record.id_json), field_, reason_);
    return;
  }
  if (!options_.count_tokens) {
    record.key = keys_->Key(record.text);
    if (known_ && LeaveUnchanged(known_entry, record)) return;
    if (AnswerWithoutRequest(&record)) return;
  }
  record.tokens = counter_->Count(record.text);
  if (options_.count_tokens) {
    // Counting sends nothing, so every line resolves here, in input order.
    output_->AddText(fmt::format("{{\"id\":{},\"tokens\":{}}}\n",
                                 record.id_json, record.tokens));
    ++stats_.embedded;  // counted, in this mode
    reorder_.Skip(seq);
    return;
  }
  uint32_t cap = static_cast<uint32_t>(options_.max_input_tokens);
  if (record.tokens > cap && ServerTruncates(options_)) {
    // The server cuts it to at most `cap` of its own tokens, which the
    // client's estimate cannot place; that is what the request then holds.
    record.tokens = cap;
  }
  if (record.tokens <= cap) {
    Add(std::move(record));
    return;
  }
  switch (overlong_) {
    case OverlongPolicy::kSkip:
    case OverlongPolicy::kFail: {
      std::string reason = fmt::format(
          "text has {} tokens, over --max-input-tokens {} (--overlong {})",
          GroupThousands(record.tokens), cap, options_.overlong);
      Reject(seq, line_number, input_name_, std::move(record.id_json), options_.text_field,
             reason);
      if (overlong_ == OverlongPolicy::kFail) {
        // Input ends here: what came before is still embedded and written.
        stop_message_ = fmt::format("stopped at {}:{}: {}", input_name_,
                                    line_number, reason);
        EndInput();
      }
      return;
    }
    case OverlongPolicy::kTruncate:
      Truncate(&record, cap);
      Add(std::move(record));
      return;
    case OverlongPolicy::kSplit:
      AddPieces(std::move(record), cap);
      return;
  }
}

// --known: marks the line's id seen, so that it is never listed deleted
// whatever becomes of the line, and returns its entry. A line whose id
// cannot be read (or only with U+FFFD for bytes that were not UTF-8) may be
// carrying any id: deletions are then withheld.
size_t Pipeline::NoteKnownId(ParseStatus status, uint64_t line_number) {
  if (parsed_.id_json.empty() ||
      (status == ParseStatus::kError && field_ == options_.id_field)) {
    ids_unreadable_ = true;
    if (stats_.deletions_withheld.empty())
      stats_.deletions_withheld = fmt::format(
          "the id of {}:{} could not be read", input_name_, line_number);
    return KnownIds::kNotKnown;
  }
  id_text_.clear();
  if (parsed_.id_json.front() == '"') {
    AppendJsonStringText(parsed_.id_json, &id_text_);
  } else {
    id_text_ = parsed_.id_json;
    numeric_ids_ = true;
  }
  size_t entry = known_->Find(id_text_);
  if (entry != KnownIds::kNotKnown) known_->MarkSeen(entry);
  return entry;
}

// --known: a record the table holds with the same key is left out, at the
// cost of its normalization and key alone. Its vector stays in the journal
// through --compact: the row may yet be renamed, or the table restored.
bool Pipeline::LeaveUnchanged(size_t known_entry, const Record& record) {
  if (known_entry == KnownIds::kNotKnown) {
    ++stats_.new_ids;
    return false;
  }
  if (!known_->Unchanged(known_entry, record.key)) {
    ++stats_.changed;
    return false;
  }
  ++stats_.unchanged;
  if (journal_) journal_->MarkUsed(record.key);
  SkipLine(record.seq);
  return true;
}

// A text already in the checkpoint costs nothing; one identical to a text
// in flight waits for that text's answer.
bool Pipeline::AnswerWithoutRequest(Record* record) {
  uint32_t dims, tokens;
  bool collecting = Collecting();
  if (journal_ && journal_->Find(record->key, &dims, &tokens)) {
    if (collecting) return true;  // the second pass answers it
    std::vector<float> vector(dims);
    std::string err;
    if (!journal_->Read(record->key, vector.data(), &err)) {
      io_error_ = "cannot read checkpoint " + options_.checkpoint + ": " + err;
      EndInput();
      return true;
    }
    journal_->MarkUsed(record->key);
    ++stats_.from_journal;
    record->text.clear();
    record->tokens = tokens;
    EmbedOne(std::move(*record), vector.data(), dims);
    return true;
  }
  if (options_.dry_run) {
    // Each distinct text counts once, as a run with a checkpoint sends it
    // (without one, a text repeated after its first copy was answered is
    // sent again, which depends on timing and cannot be foreseen).
    if (dry_run_texts_.insert(record->key).second) return false;
    ++stats_.duplicates;
    ++stats_.embedded;
    reorder_.Skip(record->seq);
    return true;
  }
  // The first pass of --batch-api sends each text once; the second answers
  // every copy.
  if (collecting) return !batch_sent_.Insert(record->key);
  auto rejected = batch_rejected_.find(record->key);
  if (rejected != batch_rejected_.end()) {
    ++stats_.duplicates;
    Reject(record->seq, record->line, options_.inputs[record->source],
           std::move(record->id_json), rejected->second.first,
           rejected->second.second);
    return true;
  }
  auto it = in_flight_texts_.find(record->key);
  if (it == in_flight_texts_.end()) return false;
  ++stats_.duplicates;
  record->text.clear();
  record->text.shrink_to_fit();
  it->second.push_back(std::move(*record));
  return true;
}

void Pipeline::Add(Record record) {
  if (!Collecting()) in_flight_texts_.try_emplace(record.key);
  held_bytes_ += record.text.size();
  Batch closed;
  if (batcher_.Add(std::move(record), &closed)) Submit(std::move(closed));
}

// Cuts *record to its first `cap` tokens.
void Pipeline::Truncate(Record* record, uint32_t cap) {
  CutByTokens(*counter_, record->text, cap, true, &pieces_, &piece_tokens_);
  record->text.resize(pieces_[0].size());
  record->tokens = piece_tokens_[0];
  if (!record->truncated) ++stats_.truncated;
  record->truncated = true;
}

// The server refused `record` as over its context length, though embedpipe
// counted it within --max-input-tokens (another tokenizer, a model with a
// smaller window): --overlong applies, below what the server refused.
void Pipeline::CutAgain(Record record, const BatchResult& refused) {
  held_bytes_ -= record.text.size();
  uint32_t cap = LoweredCap(record.tokens, refused.server_max_tokens);
  const std::string& source = options_.inputs[record.source];
  bool cut = overlong_ == OverlongPolicy::kSplit ||
             overlong_ == OverlongPolicy::kTruncate;
  if (!warned_server_limit_) {
    warned_server_limit_ = true;
    diag::Warning(fmt::format(
        "the server refused {}:{} as too long{}, though it has {} tokens by "
        "embedpipe's count; a text it refuses so is {} (--overlong {})",
        source, record.line,
        refused.server_max_tokens > 0
            ? fmt::format(" (its limit: {} tokens)", refused.server_max_tokens)
            : "",
        record.tokens,
        overlong_ == OverlongPolicy::kSplit ? "split below what it refused"
        : overlong_ == OverlongPolicy::kTruncate
            ? "truncated below what it refused"
            : "rejected",
        options_.overlong));
  }
  if (!cut || cap >= record.tokens) {
    std::string reason =
        fmt::format("{} (--overlong {})", refused.error, options_.overlong);
    if (overlong_ == OverlongPolicy::kFail && stop_message_.empty()) {
      // Nothing more is read; what was read before is still embedded.
      stop_message_ =
          fmt::format("stopped at {}:{}: {}", source, record.line, reason);
      EndInput();
    }
    RejectRecord(&record, options_.text_field, reason);
    return;
  }
  if (overlong_ == OverlongPolicy::kTruncate) {
    Truncate(&record, cap);
    record.recut = true;
    Add(std::move(record));
  } else {
    AddPieces(std::move(record), cap);
  }
  // After the end of input nothing else would close the open batch.
  Batch open;
  if (input_done_ && batcher_.Flush(&open)) Submit(std::move(open));
}

void Pipeline::AddPieces(Record record, uint32_t cap) {
  CutByTokens(*counter_, record.text, cap, false, &pieces_, &piece_tokens_);
  ++stats_.split;
  uint32_t parts = static_cast<uint32_t>(pieces_.size());
  PendingSplit& pending = splits_[record.seq];
  pending.vectors.resize(parts);
  pending.weights = piece_tokens_;
  for (uint32_t i = 0; i < parts; ++i) {
    Record part;
    part.seq = record.seq;
    part.line = record.line;
    part.source = record.source;
    part.id_json = record.id_json;
    part.text.assign(pieces_[i]);
    part.tokens = piece_tokens_[i];
    part.part = i;
    part.parts = parts;
    part.key = record.key;
    Add(std::move(part));
  }
  // What the combined result needs to be written; the text went to the parts.
  record.text.clear();
  record.text.shrink_to_fit();
  record.tokens = 0;
  for (uint32_t t : piece_tokens_) record.tokens += t;
  if (Collecting()) splits_.erase(record.seq);  // the second pass combines
  else pending.record = std::move(record);
}

void Pipeline::ResolvePiece(const Record& part, const float* vector,
                            size_t dims, const std::string* error) {
  held_bytes_ -= part.text.size();
  auto it = splits_.find(part.seq);
  PendingSplit& pending = it->second;
  if (error) {
    if (pending.error.empty()) pending.error = *error;
  } else {
    pending.vectors[part.part].assign(vector, vector + dims);
    held_bytes_ -= dims * sizeof(float);
  }
  if (++pending.resolved < pending.vectors.size()) return;
  if (!pending.error.empty()) {
    RejectRecord(&pending.record, options_.text_field, pending.error);
  } else {
    std::vector<const float*> vectors;
    for (const std::vector<float>& v : pending.vectors) vectors.push_back(v.data());
    dims = pending.vectors[0].size();
    std::vector<float> combined(dims);
    CombineWeighted(vectors, pending.weights, dims, combined.data());
    Embedded(pending.record, combined.data(), dims);
    EmbedOne(std::move(pending.record), combined.data(), dims);
  }
  splits_.erase(it);
}

// A record's vector arrived (a whole record's, or a split record's
// combined one): journal it, and answer the identical texts waiting on it.
void Pipeline::Embedded(const Record& record, const float* vector,
                        size_t dims) {
  if (journal_) {
    std::string err;
    if (!journal_->Append(record.key, record.tokens, vector,
                          static_cast<uint32_t>(dims), &err))
      io_error_ = "cannot write checkpoint " + options_.checkpoint + ": " + err;
    journal_->MarkUsed(record.key);
    journal_dirty_ = true;
  }
  auto it = in_flight_texts_.find(record.key);
  if (it == in_flight_texts_.end()) return;
  std::vector<Record> waiting = std::move(it->second);
  in_flight_texts_.erase(it);
  for (Record& w : waiting) {
    w.tokens = record.tokens;
    EmbedOne(std::move(w), vector, dims);
  }
}

// Queues one record with its own copy of `vector` for ordered output.
void Pipeline::EmbedOne(Record record, const float* vector, size_t dims) {
  auto result = std::make_shared<BatchResult>();
  result->embeddings.dims = dims;
  result->embeddings.values.assign(vector, vector + dims);
  result->batch.records.push_back(std::move(record));
  held_bytes_ += dims * sizeof(float);
  reorder_.Embed(std::move(result));
}

// Rejects *record, and every identical text waiting on it, for `reason`.
void Pipeline::RejectRecord(Record* record, const std::string& field,
                            const std::string& reason) {
  if (batch_api_) batch_rejected_.try_emplace(record->key, field, reason);
  std::vector<Record> all;
  auto it = in_flight_texts_.find(record->key);
  if (it != in_flight_texts_.end()) {
    all = std::move(it->second);
    in_flight_texts_.erase(it);
  }
  all.push_back(std::move(*record));
  for (Record& r : all)
    Reject(r.seq, r.line, options_.inputs[r.source], std::move(r.id_json),
           field, reason);
}

// Makes every vector journaled this turn durable; only then may their
// output lines be released.
void Pipeline::SyncJournal() {
  if (!journal_ || !journal_dirty_) return;
  std::string err;
  if (!journal_->Sync(&err))
    io_error_ = "cannot write checkpoint " + options_.checkpoint + ": " + err;
  journal_dirty_ = false;
}

void Pipeline::Reject(uint64_t seq, uint64_t line, const std::string& source,
                      std::string id_json,
                      std::string field, std::string reason) {
  if (Collecting()) return;  // the second pass rejects it again
  RecordError e;
  e.seq = seq;
  e.line = line;
  e.source = source;
  e.id_json = std::move(id_json);
  e.field = std::move(field);
  e.reason = std::move(reason);
  reorder_.Reject(std::move(e));
}

void Pipeline::Submit(Batch batch) {
  if (Collecting()) {
    held_bytes_ -= batch.bytes;  // written to the upload file
    batch_records_ += batch.records.size();
  }
  ++stats_.batches;
  tokens_formed_ += batch.tokens;
  if (options_.dry_run) ResolveUnsent(batch);
  else if (batch_api_) batch_api_->Submit(std::move(batch));
  else scheduler_.Submit(std::move(batch));
}

// The run stopped early (a signal, or an error no request survives): the
// records read and not answered go to the errors output, so that every
// answer received after them is written too.
void Pipeline::RejectUnanswered() {
  CollectResults();
  std::string& reason = unanswered_reason_;
  reason = "not embedded: the run stopped (";
  if (scheduler_.fatal())
    reason += "the API refused the run: " + scheduler_.fatal_message() + ")";
  else
    reason += InterruptSignal() == SIGINT ? "interrupted by SIGINT)"
                                          : "interrupted by SIGTERM)";
  std::vector<Batch> unanswered;
  scheduler_.TakeUnanswered(&unanswered);
  Batch open;
  if (batcher_.Flush(&open)) unanswered.push_back(std::move(open));
  for (Batch& batch : unanswered) {
    for (Record& r : batch.records) {
      if (r.parts > 1) {
        ResolvePiece(r, nullptr, 0, &reason);
        continue;
      }
      held_bytes_ -= r.text.size();
      RejectRecord(&r, "", reason);
    }
  }
  WriteReleased();
}

// --dry-run: a batch is counted, never sent. Its records count as embedded
// at once, releasing their lines (nothing is written); a split record once
// its last piece is here.
void Pipeline::ResolveUnsent(const Batch& batch) {
  for (const Record& r : batch.records) {
    held_bytes_ -= r.text.size();
    if (r.parts > 1) {
      auto it = splits_.find(r.seq);
      if (++it->second.resolved < r.parts) continue;
      splits_.erase(it);
    }
    ReleaseUnsent(r.seq, r.key);
  }
}

void Pipeline::ReleaseUnsent(uint64_t seq, const JournalKey& key) {
  in_flight_texts_.erase(key);
  reorder_.Skip(seq);
  ++stats_.embedded;
}

void Pipeline::CollectResults() {
  BatchResult result;
  while (batch_api_ ? batch_api_->NextResult(&result)
                    : scheduler_.NextResult(&result)) {
    if (result.status == BatchResult::kEmbedded) {
      stats_.tokens_reported += result.embeddings.prompt_tokens;
      held_bytes_ += result.embeddings.values.size() * sizeof(float);
      auto shared = std::make_shared<BatchResult>(std::move(result));
      const Embeddings& e = shared->embeddings;
      for (size_t i = 0; i < shared->batch.records.size(); ++i) {
        const Record& r = shared->batch.records[i];
        const float* vector = e.values.data() + i * e.dims;
        if (r.parts > 1) ResolvePiece(r, vector, e.dims, nullptr);
        else Embedded(r, vector, e.dims);
      }
      reorder_.Embed(std::move(shared));
      continue;
    }
    if (result.status == BatchResult::kTooLong &&
        result.batch.records[0].parts == 1 && !result.batch.records[0].recut) {
      CutAgain(std::move(result.batch.records[0]), result);
      continue;
    }
    // The API refused this text; a batch that ran out of retries says
    // nothing about any one field.
    std::string field =
        result.status == BatchResult::kFailed ? "" : options_.text_field;
    for (Record& r : result.batch.records) {
      if (r.parts > 1) {
        ResolvePiece(r, nullptr, 0, &result.error);
        continue;
      }
      held_bytes_ -= r.text.size();
      RejectRecord(&r, field, result.error);
    }
  }
  SyncJournal();
}

bool Pipeline::FlushOutputs() {
  if (errors_out_ && !errors_out_->buffer().empty()) errors_out_->Flush();
  return !output_->failed();
}

// Counts a rejected record and describes it on the errors output (or, for
// the first few, on stderr).
void Pipeline::WriteError(const RecordError& error) {
  ++stats_.rejected;
  if (errors_out_) {
    AppendErrorJson(error, &errors_out_->buffer());
    errors_out_->MaybeFlush();
  } else if (error.reason == unanswered_reason_) {
    ++unanswered_;  // counted in one line at the end
  } else if (++error_messages_ <= kMaxErrorMessages) {
    diag::Error(FormatErrorMessage(error));
  }
}

bool Pipeline::WriteReleased() {
  reorder_.Release([this](const Released& item) {
    if (item.record) {
      held_bytes_ -= OutputBytes(*item.record, item.dims);
      const Record& r = *item.record;
      if (!writer_->AcceptsVector(item.vector, item.dims, &field_, &reason_)) {
        // Its line becomes an error record, in the same place.
        RecordError e;
        e.seq = r.seq;
        e.line = r.line;
        e.source = options_.inputs[r.source];
        e.id_json = r.id_json;
        e.field = field_;
        e.reason = reason_;
        WriteError(e);
        return true;
      }
      if (!options_.dry_run)
        output_->Add(item.owner, item.record, item.vector, item.dims);
      ++stats_.embedded;
      return true;
    }
    if (item.error) WriteError(*item.error);
    return true;
  });
  output_->Send();
  return !output_->failed();
}

int Pipeline::Run() {
  if (!Setup()) return kExitUsage;
  if (!options_.dry_run) {
    std::string header;
    writer_->AppendHeader(&header);
    output_->AddText(std::move(header));
  }
  start_ms_ = clock_->NowMs();
  collect_stats_ = stats_;
  if (!OpenNextInput()) input_done_ = true;

  while (true) {
    if (!stopping_ && (InterruptSignal() || scheduler_.fatal() ||
                       (batch_api_ && batch_api_->fatal()))) {
      stopping_ = true;
      scheduler_.StopStarting();
      if (batch_api_) batch_api_->StopStarting();
      drain_deadline_ms_ = clock_->NowMs() + kDrainMs;
    }
    if (drain_deadline_ms_ && clock_->NowMs() >= drain_deadline_ms_) {
      scheduler_.CancelInFlight();
      if (batch_api_) batch_api_->CancelInFlight();
      break;
    }
    bool want_input = WantInput(output_->pending_bytes());
    if (!want_input && WantInput(0) && scheduler_.in_flight() == 0) {
      // Only lines waiting to be formatted fill the window, and with
      // nothing in flight no answer would wake this loop when the output's
      // thread has drained them. (With requests in flight it waits for
      // those, as it must receive them anyway.)
      output_->WaitUntilPendingBelow(max_held_bytes_ - held_bytes_);
      want_input = true;
    }
    if (!want_input && !input_done_ && !stopping_ && !batch_api_ &&
        scheduler_.outstanding() == 0) {
      // The window is full and nothing else will free it: the open batch
      // must go now, or the lines it holds would never be released. While
      // requests are outstanding their answers free the window instead, so
      // batches close only at their caps whatever the timing, and a run
      // sends the requests a dry run counts.
      Batch open;
      if (batcher_.Flush(&open)) Submit(std::move(open));
    }
    bool input_ready = false;
    if (batch_api_)
      batch_api_->Step(kMaxWaitMs, want_input ? input_fd_ : -1, &input_ready);
    else
      scheduler_.Step(kMaxWaitMs, want_input ? input_fd_ : -1, &input_ready);
    if (input_ready) {
      last_input_ms_ = clock_->NowMs();
      ReadInput();
    } else if (want_input && batcher_.open_size() > 0 && !batch_api_ &&
               clock_->NowMs() - last_input_ms_ >= kIdleFlushMs) {
      Batch open;
      if (batcher_.Flush(&open)) Submit(std::move(open));
    }
    CollectResults();
    if (!io_error_.empty()) break;  // unsaved results must not be written
    if (!WriteReleased()) break;
    // Buffered output goes out whenever the loop has nothing more to read
    // at once: large writes under load, prompt lines for a streaming reader.
    if (!input_ready && !FlushOutputs()) break;
    ShowProgress();
    bool idle = batch_api_ ? batch_api_->in_flight() == 0
                           : scheduler_.in_flight() == 0;
    if (stopping_ && idle) break;
    if (input_done_ && idle &&
        (batch_api_ ? batch_api_->outstanding() : scheduler_.outstanding()) == 0) {
      if (!Collecting() || !io_error_.empty()) break;
      StartReplay();
    }
  }
  if (batch_api_) {
    for (size_t i = 0; i < spilled_.size(); ++i)
      if (spilled_[i]) unlink(SpillPath(i).c_str());
  }
  // With a checkpoint, output stops at the first record not answered (a
  // rerun writes the rest, answering from the journal what this run
  // received); without one, what was received is all there is.
  if (stopping_ && !journal_ && !options_.dry_run && !output_->failed())
    RejectUnanswered();
  // Every job's results are journaled: a rerun has no job to resume.
  std::string err;
  if (batch_api_ && batch_api_->replaying() && input_done_ && !stopping_ &&
      io_error_.empty() && batch_api_->outstanding() == 0 &&
      !batch_api_->Forget(&err))
    diag::Warning(err);
  return Finish();
}

// Gathers what the scheduler and the input position say into stats_.
void Pipeline::RefreshStats() {
  const SchedulerStats& s = scheduler_.stats();
  stats_.requests = batch_api_ ? batch_api_->requests() : s.requests;
  stats_.rate_limited = s.rate_limited;
  stats_.retries = s.retries;
  stats_.gave_up = s.gave_up;
  // A dry run sends nothing, and the Batch API uploads every batch formed:
  // their counts are of the batches.
  bool sends = !options_.dry_run && !batch_api_;
  stats_.tokens_sent = sends ? s.tokens_sent : tokens_formed_;
  stats_.tokens_unsent = sends ? tokens_formed_ - s.tokens_went_out : 0;
  stats_.in_flight =
      batch_api_ ? batch_api_->in_flight() : scheduler_.in_flight();
  if (batch_api_) stats_.batch_jobs = batch_api_->JobCounts();
  stats_.endpoints.clear();
  const EndpointPool& pool = scheduler_.endpoints();
  for (size_t i = 0; pool.size() > 1 && i < pool.size(); ++i)
    stats_.endpoints.push_back(pool.counts(i));
  stats_.elapsed_ms = clock_->NowMs() - start_ms_;
  if (input_sizes_.empty()) return;
  if (input_done_) {
    stats_.input_bytes_done = stats_.input_bytes_total;
    return;
  }
  uint64_t done = 0;
  for (size_t i = 0; i + 1 < next_input_; ++i) done += input_sizes_[i];
  // Where the descriptor is: bytes read so far, a read ahead of parsing.
  off_t at = input_fd_ >= 0 ? lseek(input_fd_, 0, SEEK_CUR) : -1;
  stats_.input_bytes_done = done + (at > 0 ? static_cast<uint64_t>(at) : 0);
}

void Pipeline::ShowProgress() {
  if (!progress_.Due(clock_->NowMs() - start_ms_)) return;
  RefreshStats();
  std::string line = progress_.Line(stats_);
  if (progress_.mode() == ProgressMode::kBar) diag::Status(line);
  else diag::Info(line);
}

int Pipeline::Finish() {
  diag::ClearStatus();
  EndOutput();  // first: the run's time includes its last lines
  RefreshStats();
  int status = Conclude();
  if (!options_.stats_path.empty() && !WriteStatsFile(status))
    status = MoreSevere(status, kExitIoError);
  return status;
}

bool Pipeline::WriteStatsFile(int status) {
  std::string json = FormatStatsJson(stats_, status);
  int fd = open(options_.stats_path.c_str(),
                O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  FdOutput out(fd);
  if (fd >= 0) {
    out.buffer() = std::move(json);
    out.Flush();
  }
  if (fd < 0 || !out.error().empty()) {
    diag::Error(fmt::format("cannot write {}: {}", options_.stats_path,
                            fd < 0 ? std::strerror(errno) : out.error()));
    if (fd >= 0) close(fd);
    return false;
  }
  return close(fd) == 0;
}

// Writes the last of the output and waits until it is written. Also after
// an interrupt: what was written is complete records.
void Pipeline::EndOutput() {
  if (!options_.dry_run) {
    std::string trailer;
    writer_->AppendTrailer(&trailer);
    output_->AddText(std::move(trailer));
  }
  output_->Finish();
  if (errors_out_) errors_out_->Flush();
}

// Whether the whole input was read and handled: every input read to its
// end, no fatal API error, no interrupt, no --overlong fail.
bool Pipeline::Finished() const {
  return input_done_ && unread_input_.empty() && stop_message_.empty() &&
         !scheduler_.fatal() && !(batch_api_ && batch_api_->fatal()) &&
         !InterruptSignal();
}

// Whether this shard lists known id `known_entry` as deleted. The table
// keeps an id's text, the shard hash takes the id as the input spelled it:
// a run whose ids were JSON numbers spells a numeric-looking id as one.
bool Pipeline::OwnsKnownId(size_t known_entry) {
  if (shard_.all()) return true;
  std::string_view id = known_->Id(known_entry);
  if (numeric_ids_ && IsJsonNumber(id)) return shard_.OwnsId(id);
  id_text_.clear();
  AppendJsonString(&id_text_, id);
  return shard_.OwnsId(id_text_);
}

// --deleted: the known ids no input line carried, for the loader to delete,
// in text COPY. Deletion is the direction that loses data, so none is
// listed unless the run read every line to the end and could read every
// line's id. False on a write error.
bool Pipeline::WriteDeleted() {
  bool output_whole = !output_->broken_pipe() && output_->error().empty() &&
                      !(errors_out_ && !errors_out_->error().empty()) &&
                      io_error_.empty();
  if (stats_.deletions_withheld.empty() && !unread_input_.empty())
    stats_.deletions_withheld = unread_input_;
  if (stats_.deletions_withheld.empty() && (!Finished() || !output_whole))
    stats_.deletions_withheld = "the run did not finish";
  if (!stats_.deletions_withheld.empty()) {
    diag::Warning(fmt::format("no deletions written to {}: {}",
                              options_.deleted_path,
                              stats_.deletions_withheld));
    close(deleted_fd_);
    return true;
  }
  FdOutput out(deleted_fd_);
  bool ok = true;
  for (size_t e = 0; ok && e < known_->size(); ++e) {
    if (known_->Seen(e) || !OwnsKnownId(e)) continue;
    AppendCopyTextField(known_->Id(e), &out.buffer());
    out.buffer().push_back('\n');
    ++stats_.deleted;
    ok = out.MaybeFlush();
  }
  ok = ok && out.Flush();
  if (close(deleted_fd_) != 0 && ok) ok = false;
  if (!ok) {
    diag::Error(fmt::format("cannot write {}: {}", options_.deleted_path,
                            out.error().empty() ? std::strerror(errno) : out.error()));
  }
  return ok;
}

// Writes the summary; says why the run ended if it ended early. Returns the
// exit status: when several things went wrong, the most severe (MoreSevere).
int Pipeline::Conclude() {
  // First, so that --stats says why no deletions were written whatever
  // ends the run below.
  if (deleted_fd_ >= 0 && !WriteDeleted()) return kExitIoError;
  if (output_->broken_pipe()) return kExitSuccess;  // the reader went away
  if (!output_->error().empty()) {
    diag::Error("cannot write output: " + output_->error());
    return kExitIoError;
  }
  if (errors_out_ && !errors_out_->error().empty()) {
    diag::Error("cannot write " + options_.errors_path + ": " +
                errors_out_->error());
    return kExitIoError;
  }
  if (!io_error_.empty()) {
    diag::Error(io_error_ + "; output stops at the last saved record");
    return kExitIoError;
  }
  if (options_.count_tokens) {
    diag::Info(fmt::format("{} counted, {} rejected; {:.1f} s",
                           GroupThousands(stats_.embedded),
                           GroupThousands(stats_.rejected),
                           stats_.elapsed_ms / 1000.0));
  } else {
    for (const std::string& line : FormatSummary(stats_)) diag::Info(line);
  }
  if (journal_ && options_.compact) {
    std::string err;
    if (!Finished()) {
      diag::Warning("checkpoint not compacted: the run did not finish");
    } else if (!journal_->Compact(&err)) {
      diag::Error("cannot compact checkpoint " + options_.checkpoint + ": " +
                  err);
      return kExitIoError;
    } else {
      diag::Info(fmt::format("checkpoint compacted to the {} this run used",
                             CountNoun(journal_->used(), "vector", "vectors")));
    }
  }
  if (error_messages_ > kMaxErrorMessages)
    diag::Info(fmt::format(
        "{} more rejected records not shown; use --errors FILE to keep them "
        "all",
        GroupThousands(error_messages_ - kMaxErrorMessages)));
  if (unanswered_)
    diag::Info(fmt::format("{} not embedded: the run stopped; --errors FILE "
                           "lists them",
                           CountNoun(unanswered_, "record", "records")));
  const std::string& fatal = batch_api_ && batch_api_->fatal()
                                ? batch_api_->fatal_message()
                                : scheduler_.fatal_message();
  int status = stats_.rejected > 0 ? kExitRejected : kExitSuccess;
  // Deletions withheld for a line whose id could not be read, even one
  // left to another shard, are something rejected.
  if (deleted_fd_ >= 0 && ids_unreadable_) status = MoreSevere(status, kExitRejected);
  if (!fatal.empty()) {
    std::string hint;
    if (fatal.rfind("HTTP 401", 0) == 0)
      hint = !key_sent_ && options_.api_key_env.empty()
                 ? " (no API key was sent: give one with --api-key-env or "
                   "--api-key-file)"
             : !key_sent_
                 ? fmt::format(" (no API key was sent: ${} is empty or unset)",
                               options_.api_key_env)
             : options_.api_key_file.empty()
                 ? fmt::format(" (the key came from ${})", options_.api_key_env)
                 : fmt::format(" (the key came from --api-key-file {})",
                               options_.api_key_file);
    diag::Error("the API refused the run: " + fatal + hint);
    status = MoreSevere(status, kExitFatalApi);
  }
  if (!stop_message_.empty()) {
    diag::Error(stop_message_);
    status = MoreSevere(status, kExitRejected);
  }
  if (InterruptSignal()) {
    // Without a checkpoint the records not embedded were listed or counted.
    diag::Info(journal_ ? "interrupted; records not written above were not "
                          "embedded"
                        : "interrupted");
    status = MoreSevere(status, kExitInterrupted);
  }
  return status;
}

}  // namespace

int RunPipeline(const Options& options, const std::string& api_key,
                Transport* transport, const Clock* clock, int out_fd,
                ProgressMode progress) {
  Pipeline pipeline(options, api_key, transport, clock, out_fd, progress);
  return pipeline.Run();
}
