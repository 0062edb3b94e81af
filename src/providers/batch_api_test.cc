#include "providers/batch_api.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <doctest/doctest.h>
#include <fmt/core.h>
#include <rapidjson/document.h>

#include "app/diag.h"
#include "providers/codec_test_util.h"
#include "providers/openai_codec.h"
#include "test_util.h"

namespace {

Batch MakeBatch(uint64_t number, std::vector<std::string> texts) {
  Batch b;
  b.number = number;
  for (std::string& t : texts) {
    Record r;
    r.seq = number * 100 + b.records.size();
    r.text = std::move(t);
    std::copy(r.text.begin(), r.text.end(), r.key.begin());  // short texts
    b.bytes += r.text.size();
    b.records.push_back(std::move(r));
  }
  return b;
}

// A scripted Batch API: stores the uploaded file, and once polled
// `polls_to_finish` times answers every request with vectors [i, n] for
// input i of n, in reverse line order; `fail_line` (1-based) goes to the
// error file instead: a 400 response, or with `expire`, an expired job's
// batch_expired line.
struct FakeBatchApi {
  int polls_to_finish = 2;
  int fail_line = 0;
  bool expire = false;
  int uploads = 0, creations = 0, polls = 0, lists = 0, file_lists = 0;
  std::string uploaded, content_type;

  HttpResponse operator()(const HttpRequest& req) {
    HttpResponse r;
    r.status = 200;
    if (req.url.ends_with("/files?purpose=batch&limit=100") && req.method == "GET") {
      ++file_lists;
      r.body = R"({"object":"list","data":[)" + (uploads ? FileObject() : "") + "]}";
    } else if (req.url.ends_with("/files") && req.method == "POST") {
      ++uploads;
      uploaded = req.body;
      for (const std::string& h : req.headers)
        if (h.starts_with("Content-Type:")) content_type = h;
      r.body = R"({"id":"file-in","object":"file","bytes":1,"purpose":"batch"})";
    } else if (req.url.ends_with("/batches") && req.method == "POST") {
      ++creations;
      r.body = Batch("validating");
    } else if (req.url.ends_with("/batches?limit=100") && req.method == "GET") {
      ++lists;
      r.body = fmt::format(R"({{"object":"list","data":[{}],"has_more":false}})",
                           creations ? Batch("validating") : "");
    } else if (req.url.ends_with("/batches/batch_1") && req.method == "GET") {
      r.body = Batch(++polls < polls_to_finish ? "in_progress"
                     : expire                  ? "expired"
                                               : "completed");
    } else if (req.url.ends_with("/files/file-out/content")) {
      r.body = Results(false);
    } else if (req.url.ends_with("/files/file-err/content")) {
      r.body = Results(true);
    } else {
      r.status = 404;
    }
    return r;
  }

  // The uploaded file as GET /files lists it: its name and size as sent.
  std::string FileObject() const {
    size_t name = uploaded.find("filename=\"") + 10;
    size_t start = uploaded.find("\r\n\r\n", name) + 4;
    size_t end = uploaded.rfind("\r\n--");
    return fmt::format(R"({{"id":"file-in","object":"file","bytes":{},"filename":"{}",)"
                       R"("purpose":"batch"}})",
                       end - start, uploaded.substr(name, uploaded.find('"', name) - name));
  }

  std::string Batch(const char* status) const {
    bool done = std::string(status) != "in_progress" &&
                std::string(status) != "validating";
    return fmt::format(
        R"({{"id":"batch_1","object":"batch","input_file_id":"file-in","status":"{}",)"
        R"("output_file_id":{},)"
        R"("error_file_id":{},"request_counts":{{"total":3,"completed":0,"failed":0}}}})",
        status, done ? "\"file-out\"" : "null",
        done && fail_line ? "\"file-err\"" : "null");
  }

  std::string Results(bool errors) const {
    std::vector<std::string> lines;
    std::istringstream in(uploaded);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      if (!line.starts_with("{\"custom_id\"")) continue;
      ++n;
      rapidjson::Document doc;
      doc.Parse(line.data(), line.size());
      std::string id = doc["custom_id"].GetString();
      if ((n == fail_line) != errors) continue;
      if (errors && expire) {
        lines.push_back(fmt::format(
            R"({{"id":"x","custom_id":"{}","response":null,"error":{{"code":)"
            R"("batch_expired","message":"expired first"}}}})",
            id));
        continue;
      }
      if (errors) {
        lines.push_back(fmt::format(
            R"({{"id":"x","custom_id":"{}","response":{{"status_code":400,"body":)"
            R"({{"error":{{"message":"bad input {}"}}}}}},"error":null}})",
            id, n));
        continue;
      }
      const auto& input = doc["body"]["input"];
      std::string data;
      for (rapidjson::SizeType i = 0; i < input.Size(); ++i)
        data += fmt::format("{}{{\"index\":{},\"embedding\":[{},{}]}}",
                            i ? "," : "", i, i, input.Size());
      lines.push_back(fmt::format(
          R"({{"id":"x","custom_id":"{}","response":{{"status_code":200,)"
          R"("body":{{"data":[{}],"usage":{{"prompt_tokens":7}}}}}},"error":null}})",
          id, data));
    }
    std::reverse(lines.begin(), lines.end());
    std::string out;
    for (const std::string& l : lines) out += l + "\n";
    return out;
  }
};

CodecConfig OpenAiTestConfig() {
  return ConfigFor("http://x/v1", "text-embedding-3-small", 2, false, "sk");
}

BatchApiConfig RunnerConfig(const std::string& state) {
  diag::SetQuiet(true);  // progress lines are not under test here
  BatchApiConfig c;
  c.base_url = "http://x/v1";
  c.api_key = "sk";
  c.state_path = state;
  return c;
}

// A Batch API with a batch queue limit of `limit` tokens, one token per
// input: a job created while the jobs validating or in progress and its
// own hold more is answered 200, then fails with token_limit_exceeded. A
// job goes validating -> in_progress -> completed, one step per poll.
struct QueueApi {
  struct Job {
    std::string file_id;
    uint64_t tokens = 0;
    uint64_t beside = 0;  // Enqueued when it was created.
    bool refused = false;
    int polls = 0;
    bool Running() const { return !refused && polls < 2; }
  };
  uint64_t limit = 3;
  uint64_t others = 0;  // Enqueued by other clients' jobs.
  std::map<std::string, std::string> files;  // id -> content
  std::vector<Job> jobs;                     // batch_N is jobs[N - 1]
  int uploads = 0;
  bool lose_creations = false;  // The answer to POST /batches is lost.

  HttpResponse operator()(const HttpRequest& req) {
    HttpResponse r;
    r.status = 200;
    if (req.url.ends_with("/files?purpose=batch&limit=100")) {
      r.body = R"({"object":"list","data":[]})";
    } else if (req.url.ends_with("/files") && req.method == "POST") {
      std::string id = fmt::format("file-{}", ++uploads);
      size_t start = req.body.find("application/jsonl\r\n\r\n") + 21;
      files[id] = req.body.substr(start, req.body.rfind("\r\n--") - start);
      r.body = fmt::format(R"({{"id":"{}","object":"file"}})", id);
    } else if (req.url.ends_with("/batches") && req.method == "POST") {
      rapidjson::Document doc;
      doc.Parse(req.body.data(), req.body.size());
      Job job;
      job.file_id = doc["input_file_id"].GetString();
      ForEachRequest(files[job.file_id], [&](const rapidjson::Document& line) {
        job.tokens += line["body"]["input"].Size();
      });
      uint64_t enqueued = others;
      for (const Job& j : jobs)
        if (j.Running()) enqueued += j.tokens;
      job.beside = enqueued;
      job.refused = enqueued + job.tokens > limit;
      jobs.push_back(job);
      r.body = Object(jobs.size(), false);
      if (lose_creations) {
        r = HttpResponse();
        r.transport_error = "Operation timed out";
      }
    } else if (req.url.ends_with("/batches?limit=100")) {
      std::string data;
      for (size_t n = jobs.size(); n > 0; --n)
        data += (data.empty() ? "" : ",") + Object(n, true);
      r.body = R"({"object":"list","data":[)" + data + "]}";
    } else if (req.url.find("/batches/batch_") != std::string::npos) {
      size_t n = std::stoul(req.url.substr(req.url.rfind('_') + 1));
      ++jobs[n - 1].polls;
      r.body = Object(n, true);
    } else if (req.url.find("/content") != std::string::npos) {
      size_t n = std::stoul(req.url.substr(req.url.find("file-out-") + 9));
      r.body = Output(files[jobs[n - 1].file_id]);
    } else {
      r.status = 404;
    }
    return r;
  }

  // batch_n; `seen`: as polled or listed (a refused job has failed).
  std::string Object(size_t n, bool seen) const {
    const Job& job = jobs[n - 1];
    const char* status = !seen                   ? "validating"
                         : job.refused           ? "failed"
                         : job.polls < 1         ? "validating"
                         : job.polls < 2         ? "in_progress"
                                                 : "completed";
    std::string errors =
        job.refused && seen
            ? fmt::format(
                  R"({{"object":"list","data":[{{"code":"token_limit_exceeded","line":null,)"
                  R"("param":null,"message":"Enqueued token limit reached for m in )"
                  R"(organization org-x. Limit: {} enqueued tokens. Please try again )"
                  R"(once some in_progress batches have been completed."}}]}})",
                  limit)
            : "null";
    return fmt::format(
        R"({{"id":"batch_{}","object":"batch","input_file_id":"{}","status":"{}",)"
        R"("errors":{},"output_file_id":{},"error_file_id":null,)"
        R"("request_counts":{{"total":0,"completed":0,"failed":0}}}})",
        n, job.file_id, status, errors,
        std::string(status) == "completed" ? fmt::format("\"file-out-{}\"", n) : "null");
  }

  template <typename Fn>
  static void ForEachRequest(const std::string& content, Fn fn) {
    std::istringstream in(content);
    std::string line;
    while (std::getline(in, line)) {
      rapidjson::Document doc;
      doc.Parse(line.data(), line.size());
      fn(doc);
    }
  }

  // Vectors [i, n] for input i of n, for each request line of `content`.
  static std::string Output(const std::string& content) {
    std::string out;
    ForEachRequest(content, [&](const rapidjson::Document& doc) {
      const auto& input = doc["body"]["input"];
      std::string data;
      for (rapidjson::SizeType i = 0; i < input.Size(); ++i)
        data += fmt::format("{}{{\"index\":{},\"embedding\":[{},{}]}}", i ? "," : "", i,
                            i, input.Size());
      out += fmt::format(
          R"({{"id":"x","custom_id":"{}","response":{{"status_code":200,"body":{{"data":[{}]}}}},)"
          R"("error":null}})",
          doc["custom_id"].GetString(), data) + "\n";
    });
    return out;
  }

  // Per file, whether each of its jobs was refused, in order.
  std::map<std::string, std::vector<bool>> JobsByFile() const {
    std::map<std::string, std::vector<bool>> by_file;
    for (const Job& j : jobs) by_file[j.file_id].push_back(j.refused);
    return by_file;
  }
};

// A batch of one token per input, as QueueApi counts them.
Batch TokenBatch(uint64_t number, std::vector<std::string> texts) {
  Batch b = MakeBatch(number, std::move(texts));
  b.tokens = b.records.size();
  return b;
}

// Drives `runner`, whose input ended after `batches`, until every job
// ended or `steps` run out; then, as the pipeline's second pass, submits
// them again and returns their results.
std::vector<BatchResult> RunAll(BatchApiRunner* runner,
                                const std::vector<Batch>& batches,
                                int steps = 200) {
  for (int i = 0; i < steps && runner->outstanding() > 0; ++i) {
    bool ready;
    runner->Step(200, -1, &ready);
  }
  std::vector<BatchResult> all;
  if (runner->outstanding() > 0 || runner->fatal()) return all;
  runner->Replay();
  for (const Batch& b : batches) runner->Submit(b);
  BatchResult r;
  while (runner->NextResult(&r)) all.push_back(std::move(r));
  return all;
}

}  // namespace

TEST_CASE("BatchApi custom_ids depend only on the keys and pieces") {
  Batch a = MakeBatch(0, {"one", "two"});
  Batch b = MakeBatch(7, {"one", "two"});  // another number, same keys
  CHECK(RequestCustomId(a) == RequestCustomId(b));
  // Pinned: a rerun finds its stored jobs by these ids, across versions.
  CHECK(RequestCustomId(a) == "rb1eb8e6b7531c0eb6f99ce6ae619855d");
  b.records[1].part = 1;
  b.records[1].parts = 2;
  CHECK(RequestCustomId(a) != RequestCustomId(b));
}

TEST_CASE("BatchApi request lines wrap the embeddings body") {
  std::string out;
  AppendRequestLine("r1", R"({"model":"m","input":["a"]})", &out);
  CHECK(out ==
        R"({"custom_id":"r1","method":"POST","url":"/v1/embeddings","body":{"model":"m","input":["a"]}})"
        "\n");
}

TEST_CASE("BatchApi files close at the request, input and byte limits") {
  RequestFile closed;
  SUBCASE("requests") {
    RequestFileBuilder b({2, 100, 1000});
    CHECK_FALSE(b.Add("a", 2, 1, 0, &closed));
    CHECK_FALSE(b.Add("b", 2, 1, 0, &closed));
    CHECK(b.Add("c", 2, 1, 0, &closed));
    CHECK(closed.custom_ids == std::vector<std::string>{"a", "b"});
    CHECK(closed.bytes == 4);
    CHECK(closed.inputs == 2);
    CHECK(b.Flush(&closed));
    CHECK(closed.custom_ids == std::vector<std::string>{"c"});
    CHECK_FALSE(b.Flush(&closed));
  }
  SUBCASE("inputs") {
    RequestFileBuilder b({10, 5, 1000});
    CHECK_FALSE(b.Add("a", 2, 3, 0, &closed));
    CHECK_FALSE(b.Add("b", 2, 2, 0, &closed));
    CHECK(b.Add("c", 2, 1, 0, &closed));
    CHECK(closed.inputs == 5);
  }
  SUBCASE("bytes, and a line over the limit still gets a file") {
    RequestFileBuilder b({10, 100, 4});
    CHECK_FALSE(b.Add("a", 7, 1, 0, &closed));
    CHECK(b.Add("b", 2, 1, 0, &closed));
    CHECK(closed.custom_ids == std::vector<std::string>{"a"});
  }
  SUBCASE("tokens, once the batch queue limit is known") {
    RequestFileBuilder b({10, 100, 1000});
    CHECK_FALSE(b.Add("a", 2, 1, 600, &closed));
    b.set_max_tokens(1000);
    CHECK_FALSE(b.Add("b", 2, 1, 400, &closed));
    CHECK(b.Add("c", 2, 1, 1, &closed));
    CHECK(closed.tokens == 1000);
    CHECK(closed.custom_ids == std::vector<std::string>{"a", "b"});
  }
}

TEST_CASE("BatchApi output size bounds the inputs per file") {
  CHECK(LimitsForOutput(256, true).max_inputs == 50000);
  BatchFileLimits large = LimitsForOutput(0, true);  // 3072 dims
  CHECK(large.max_inputs < 50000);
  CHECK(large.max_inputs * (3072 * 16 / 3 + 400) <= (256u << 20));
  CHECK(LimitsForOutput(0, false).max_inputs < large.max_inputs);
  CHECK(large.max_requests == 50000);
  CHECK(large.max_bytes == 200u << 20);
}

TEST_CASE("BatchApi reads File and Batch objects") {
  std::string id, err;
  CHECK(ParseFileObject(R"({"id":"file-abc","object":"file"})", &id, &err));
  CHECK(id == "file-abc");
  CHECK_FALSE(ParseFileObject(R"({"object":"file"})", &id, &err));
  CHECK_FALSE(ParseFileObject("nope", &id, &err));

  BatchJobStatus s;
  REQUIRE(ParseBatchObject(
      R"({"id":"batch_1","status":"failed","output_file_id":null,)"
      R"("error_file_id":"file-e","request_counts":{"total":5,"completed":3,"failed":2},)"
      R"("errors":{"object":"list","data":[{"code":"x","message":"too big"},{"message":"m2"}]}})",
      &s, &err));
  CHECK(s.id == "batch_1");
  CHECK(s.Ended());
  CHECK(s.output_file_id.empty());
  CHECK(s.error_file_id == "file-e");
  CHECK(s.total == 5);
  CHECK(s.completed == 3);
  CHECK(s.failed == 2);
  CHECK(s.errors == "too big; m2");
  s.status = "finalizing";
  CHECK_FALSE(s.Ended());
  CHECK_FALSE(ParseBatchObject(R"({"id":"b"})", &s, &err));
}

TEST_CASE("BatchApi finds a file by name and size in a list of files") {
  std::string list =
      R"({"object":"list","data":[{"id":"file-2","bytes":10,"filename":"a.jsonl"},)"
      R"({"id":"file-1","bytes":12,"filename":"a.jsonl"}]})";
  std::string id, err;
  REQUIRE(FindFileNamed(list, "a.jsonl", 12, &id, &err));
  CHECK(id == "file-1");
  REQUIRE(FindFileNamed(list, "b.jsonl", 12, &id, &err));
  CHECK(id.empty());
  CHECK_FALSE(FindFileNamed("[]", "a.jsonl", 12, &id, &err));
}

TEST_CASE("BatchApi finds the job of a file in a list of jobs") {
  std::string list =
      R"({"object":"list","data":[{"id":"batch_2","input_file_id":"file-b","status":"validating"},)"
      R"({"id":"batch_1","input_file_id":"file-a","status":"completed",)"
      R"("output_file_id":"file-o"}],"has_more":false})";
  BatchJobStatus found;
  std::string err;
  REQUIRE(FindBatchOfFile(list, "file-a", &found, &err));
  CHECK(found.id == "batch_1");
  CHECK(found.status == "completed");
  CHECK(found.output_file_id == "file-o");
  REQUIRE(FindBatchOfFile(list, "file-c", &found, &err));
  CHECK(found.id.empty());
  CHECK_FALSE(FindBatchOfFile(R"({"object":"list"})", "file-a", &found, &err));
  CHECK(err == "batch list without data");
}

TEST_CASE("BatchApi reads output and error lines") {
  ResultLine line;
  std::string err;
  REQUIRE(ParseResultLine(
      R"({"id":"br","custom_id":"r1","response":{"status_code":200,"request_id":"q",)"
      R"("body":{"data":[1, 2]}},"error":null})",
      &line, &err));
  CHECK(line.custom_id == "r1");
  CHECK(line.status_code == 200);
  CHECK(line.body == R"({"data":[1,2]})");
  CHECK(line.error.empty());
  REQUIRE(ParseResultLine(
      R"({"custom_id":"r2","response":{"status_code":400,"body":{"error":{"message":"no"}}}})",
      &line, &err));
  CHECK(line.status_code == 400);
  CHECK(line.error == "no");
  REQUIRE(ParseResultLine(
      R"({"custom_id":"r3","response":null,"error":{"code":"batch_expired","message":"expired"}})",
      &line, &err));
  CHECK(line.status_code == 0);
  CHECK(line.body.empty());
  CHECK(line.error == "expired");
  CHECK_FALSE(ParseResultLine(R"({"response":null})", &line, &err));
}

TEST_CASE("BatchApi reads server JSON nested 100,000 deep without recursing") {
  // A recursive parse (or write-back) of these exhausted the stack.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  std::string id, err;
  CHECK_FALSE(ParseFileObject(deep, &id, &err));
  CHECK(err == "response is not a JSON object");
  CHECK(ParseFileObject(R"({"x":)" + deep + R"(,"id":"file-1"})", &id, &err));
  CHECK(id == "file-1");
  BatchJobStatus status;
  CHECK(ParseBatchObject(R"({"id":"b","status":"completed","errors":{"data":)" + deep + "}}",
                         &status, &err));
  CHECK(status.status == "completed");
  ResultLine line;
  CHECK(ParseResultLine(R"({"custom_id":"r1","response":{"status_code":500,"x":)" + deep +
                            "}}",
                        &line, &err));
  CHECK(line.status_code == 500);
  // The body is written back as text for the codec: one nested deeper than
  // any answer is refused instead.
  CHECK_FALSE(ParseResultLine(R"({"custom_id":"r1","response":{"status_code":200,"body":{"data":)" +
                                  deep + "}}}",
                              &line, &err));
  CHECK(err == "result line's response body is nested over 64 levels deep");
  std::vector<StoredJob> jobs;
  CHECK_FALSE(ParseStoredJobs(deep, &jobs, &err));
}

TEST_CASE("BatchApi polls at 250 ms doubling to a minute") {
  CHECK(PollDelayMs(0) == 250);
  CHECK(PollDelayMs(1) == 500);
  CHECK(PollDelayMs(7) == 32000);
  CHECK(PollDelayMs(8) == 60000);
  CHECK(PollDelayMs(100) == 60000);
}

TEST_CASE("BatchApi multipart body and stored jobs") {
  CHECK(MultipartHead("B", "f.jsonl") + "L1\nL2\n" + MultipartTail("B") ==
        "--B\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
        "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.jsonl\"\r\n"
        "Content-Type: application/jsonl\r\n\r\nL1\nL2\n\r\n--B--\r\n");
  std::vector<StoredJob> jobs = {{"file-1", "batch_1", {"ra", "rb"}},
                                 {"file-2", "", {"rc"}}};
  std::string text = FormatStoredJobs(jobs);
  std::vector<StoredJob> back;
  std::string err;
  REQUIRE(ParseStoredJobs(text, &back, &err));
  REQUIRE(back.size() == 2);
  CHECK(back[0].batch_id == "batch_1");
  CHECK(back[0].custom_ids == std::vector<std::string>{"ra", "rb"});
  CHECK(back[1].file_id == "file-2");
  CHECK(back[1].batch_id.empty());
  CHECK_FALSE(ParseStoredJobs("{\"batch_id\":\"x\"}\n", &back, &err));
  CHECK(err == "line 1 is not a batch job record");
}

TEST_CASE("BatchApiRunner uploads, polls, and maps results back by custom_id") {
  TempDir dir;
  std::string state = dir.path + "/ck.batch";
  FakeClock clock;
  FakeBatchApi api;
  api.fail_line = 2;
  FakeTransport transport(&clock, [&api](const HttpRequest& r) { return api(r); });
  OpenAiCodec codec(OpenAiTestConfig());
  BatchApiRunner runner(&transport, &clock, &codec, RunnerConfig(state));
  std::string err;
  REQUIRE(runner.Load(&err));
  std::vector<Batch> batches = {MakeBatch(0, {"a", "b"}), MakeBatch(1, {"c"}),
                                MakeBatch(2, {"d", "e", "f"})};
  for (const Batch& b : batches) runner.Submit(b);
  CHECK(runner.outstanding() == 3);
  bool ready;
  runner.Step(200, -1, &ready);
  CHECK(transport.sent.empty());  // nothing goes before the input ends
  // The requests are on disk as they are formed, not in memory.
  std::string upload = Slurp(runner.UploadPath(0));
  CHECK(std::count(upload.begin(), upload.end(), '\n') == 3);
  CHECK(upload.starts_with("{\"custom_id\":\"" + RequestCustomId(batches[0]) + "\""));
  struct stat st;
  REQUIRE(stat(runner.UploadPath(0).c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  runner.EndInput();
  std::vector<BatchResult> results = RunAll(&runner, batches);
  REQUIRE(results.size() == 3);
  CHECK(api.uploads == 1);
  CHECK(api.creations == 1);
  CHECK(api.content_type.starts_with("Content-Type: multipart/form-data; boundary=embedpipe-"));
  CHECK(api.uploaded.find("name=\"purpose\"\r\n\r\nbatch\r\n") != std::string::npos);
  CHECK(api.uploaded.find(upload) != std::string::npos);
  CHECK(access(runner.UploadPath(0).c_str(), F_OK) != 0);  // gone once up
  // Every request is matched to its own batch, whatever the file's order.
  std::sort(results.begin(), results.end(),
            [](const BatchResult& x, const BatchResult& y) {
              return x.batch.number < y.batch.number;
            });
  CHECK(results[0].status == BatchResult::kEmbedded);
  CHECK(results[0].embeddings.values == std::vector<float>{0, 2, 1, 2});
  CHECK(results[1].status == BatchResult::kRejected);  // line 2, one record
  CHECK(results[1].error == "bad input 2");
  CHECK(results[2].status == BatchResult::kEmbedded);
  CHECK(results[2].embeddings.values == std::vector<float>{0, 3, 1, 3, 2, 3});
  CHECK(runner.outstanding() == 0);
  // The job ids were kept; Forget drops them.
  CHECK(Slurp(state).find("\"batch_id\":\"batch_1\"") != std::string::npos);
  CHECK(access(runner.ResultPath(0, false).c_str(), F_OK) == 0);
  REQUIRE(runner.Forget(&err));
  CHECK(access(state.c_str(), F_OK) != 0);
  CHECK(access(runner.ResultPath(0, false).c_str(), F_OK) != 0);
  CHECK(access(runner.ResultPath(0, true).c_str(), F_OK) != 0);
}

TEST_CASE("BatchApiRunner: Forget removes the numbered files a killed run left") {
  // A killed run numbered its jobs otherwise (the sidecar keeps no job
  // without a file id, such as a split file's): its files past this run's
  // job numbers go too; files not of the sidecar's kinds stay.
  TempDir dir;
  std::string state = dir.path + "/ck.batch";
  std::vector<std::string> left = {state + ".upload-7", state + ".output-5",
                                   state + ".errors-9", state + ".input-2"};
  std::vector<std::string> others = {state + ".upload-x", state + ".uploads-1",
                                     state + ".upload-", dir.path + "/other.batch.upload-1"};
  for (const std::string& path : left) std::ofstream(path) << "{\"custom_id\":\"r1\"}\n";
  for (const std::string& path : others) std::ofstream(path) << "x\n";
  FakeClock clock;
  FakeBatchApi api;
  FakeTransport transport(&clock, [&api](const HttpRequest& r) { return api(r); });
  OpenAiCodec codec(OpenAiTestConfig());
  BatchApiRunner runner(&transport, &clock, &codec, RunnerConfig(state));
  std::vector<Batch> batches = {MakeBatch(0, {"a"})};
  runner.Submit(batches[0]);
  runner.EndInput();
  REQUIRE(RunAll(&runner, batches).size() == 1);
  std::string err;
  REQUIRE(runner.Forget(&err));
  for (const std::string& path : left) {
    CAPTURE(path);
    CHECK(access(path.c_str(), F_OK) != 0);
  }
  for (const std::string& path : others) {
    CAPTURE(path);
    CHECK(access(path.c_str(), F_OK) == 0);
  }
  CHECK(access(state.c_str(), F_OK) != 0);
}

TEST_CASE("BatchApiRunner resumes a stored job without uploading again") {
  TempDir dir;
  std::string state = dir.path + "/ck.batch";
  FakeClock clock;
  FakeBatchApi api;
  api.polls_to_finish = 1000;  // the first run never sees the end
  FakeTransport transport(&clock, [&api](const HttpRequest& r) { return api(r); });
  OpenAiCodec codec(OpenAiTestConfig());
  {
    BatchApiRunner first(&transport, &clock, &codec, RunnerConfig(state));
    first.Submit(MakeBatch(0, {"a", "b"}));
    first.Submit(MakeBatch(1, {"c"}));
    first.EndInput();
    bool ready;
    for (int i = 0; i < 20; ++i) first.Step(200, -1, &ready);
    CHECK(api.polls > 0);
    first.StopStarting();  // interrupted while polling
  }
  api.polls_to_finish = api.polls + 2;
  std::string err;
  BatchApiRunner second(&transport, &clock, &codec, RunnerConfig(state));
  REQUIRE(second.Load(&err));
  // The same keys, renumbered.
  std::vector<Batch> batches = {MakeBatch(5, {"a", "b"}), MakeBatch(6, {"c"})};
  for (const Batch& b : batches) second.Submit(b);
  second.EndInput();
  std::vector<BatchResult> results = RunAll(&second, batches);
  CHECK(results.size() == 2);
  CHECK(api.uploads == 1);
  CHECK(api.creations == 1);
  CHECK(second.uploads() == 0);
  for (const BatchResult& r : results) CHECK(r.status == BatchResult::kEmbedded);
}

TEST_CASE("BatchApiRunner: a stored job the server does not know is fatal") {
  TempDir dir;
  std::string state = dir.path + "/ck.batch";
  {
    std::ofstream out(state);
    out << FormatStoredJobs({{"file-1", "batch_gone", {"rx"}}});
  }
  FakeClock clock;
  FakeBatchApi api;
  FakeTransport transport(&clock, [&api](const HttpRequest& r) { return api(r); });
  OpenAiCodec codec(OpenAiTestConfig());
  BatchApiRunner runner(&transport, &clock, &codec, RunnerConfig(state));
  std::string err;
  REQUIRE(runner.Load(&err));
  bool ready;  // stored jobs are polled while the input is still read
  for (int i = 0; i < 5 && !runner.fatal(); ++i) runner.Step(200, -1, &ready);
  CHECK(runner.fatal_message() == "HTTP 404: HTTP 404 (remove " + state + " to upload anew)");
}

TEST_CASE("BatchApiRunner: a refused call stops the run, a 5xx is retried") {
  TempDir dir;
  FakeClock clock;
  FakeBatchApi api;
  int failures = 2;
  long status = 503;
  FakeTransport transport(&clock, [&](const HttpRequest& r) {
    if (failures > 0 && r.url.ends_with("/files")) {
      --failures;
      HttpResponse e;
      e.status = status;
      e.body = R"({"error":{"message":"nope"}})";
      return e;
    }
    return api(r);
  });
  OpenAiCodec codec(OpenAiTestConfig());
  SUBCASE("503 twice, then fine") {
    BatchApiRunner runner(&transport, &clock, &codec, RunnerConfig(dir.path + "/s"));
    runner.Submit(MakeBatch(0, {"a"}));
    runner.EndInput();
    CHECK(RunAll(&runner, {MakeBatch(0, {"a"})}).size() == 1);
    CHECK_FALSE(runner.fatal());
    CHECK(api.uploads == 1);
  }
  SUBCASE("401") {
    status = 401;
    BatchApiRunner runner(&transport, &clock, &codec, RunnerConfig(dir.path + "/s"));
    runner.Submit(MakeBatch(0, {"a"}));
    runner.EndInput();
    bool ready;  // the file is looked for, then its upload refused
    for (int i = 0; i < 2; ++i) runner.Step(200, -1, &ready);
    CHECK(runner.fatal());
    CHECK(runner.fatal_message() == "HTTP 401: nope");
    CHECK(api.file_lists == 1);
  }
}

TEST_CASE("BatchApiRunner: the sidecar is 0600 and a torn write leaves the last one") {
  TempDir dir;
  std::string state = dir.path + "/ck.batch";
  FakeClock clock;
  FakeBatchApi api;
  FakeTransport transport(&clock, [&api](const HttpRequest& r) { return api(r); });
  OpenAiCodec codec(OpenAiTestConfig());
  BatchApiRunner runner(&transport, &clock, &codec, RunnerConfig(state));
  runner.Submit(MakeBatch(0, {"a"}));
  runner.EndInput();
  bool ready;
  for (int i = 0; i < 20 && access(state.c_str(), F_OK) != 0; ++i)
    runner.Step(200, -1, &ready);
  std::string uploaded = Slurp(state);  // the file is up, the job not yet
  REQUIRE(uploaded.find("\"batch_id\":\"\"") != std::string::npos);
  struct stat st;
  REQUIRE(stat(state.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  // The next sidecar (with the job's id) is cut short by the file size
  // limit, as by a full disk: the one on disk must stay whole.
  struct rlimit old_limit, limit;
  REQUIRE(getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
  limit = old_limit;
  limit.rlim_cur = uploaded.size() + 3;
  auto old_handler = signal(SIGXFSZ, SIG_IGN);
  REQUIRE(setrlimit(RLIMIT_FSIZE, &limit) == 0);
  for (int i = 0; i < 20 && !runner.fatal(); ++i) runner.Step(200, -1, &ready);
  setrlimit(RLIMIT_FSIZE, &old_limit);
  signal(SIGXFSZ, old_handler);
  CHECK(api.creations == 1);
  CHECK(runner.fatal_message().starts_with("cannot write " + state));
  CHECK(Slurp(state) == uploaded);
  CHECK(access((state + ".tmp").c_str(), F_OK) != 0);
}

TEST_CASE("BatchApiRunner: an expired job's unrun requests fail, not their texts") {
  TempDir dir;
  FakeClock clock;
  FakeBatchApi api;
  api.fail_line = 2;
  api.expire = true;
  FakeTransport transport(&clock, [&api](const HttpRequest& r) { return api(r); });
  OpenAiCodec codec(OpenAiTestConfig());
  BatchApiRunner runner(&transport, &clock, &codec, RunnerConfig(dir.path + "/s"));
  std::vector<Batch> batches = {MakeBatch(0, {"a", "b"}), MakeBatch(1, {"c"})};
  for (const Batch& b : batches) runner.Submit(b);
  runner.EndInput();
  std::vector<BatchResult> results = RunAll(&runner, batches);
  REQUIRE(results.size() == 2);
  std::sort(results.begin(), results.end(),
            [](const BatchResult& x, const BatchResult& y) {
              return x.batch.number < y.batch.number;
            });
  CHECK(results[0].status == BatchResult::kEmbedded);
  // One record, yet not rejected for its text: the job ran out of time.
  CHECK(results[1].status == BatchResult::kFailed);
  CHECK(results[1].error == "expired first");
  BatchJobCounts counts = runner.JobCounts();
  CHECK(counts.jobs == 1);
  CHECK(counts.states ==
        std::vector<std::pair<std::string, uint64_t>>{{"expired", 1}});
  CHECK(counts.total == 3);
}

TEST_CASE("BatchApiRunner: a file or job made though its answer was lost is not made again") {
  // POST /files or POST /batches reaches the server, which makes the file
  // or the job; its answer is lost (a timeout, or the process killed before
  // it was read). The runner finds it (GET /files, GET /batches) instead.
  struct Lost {
    const char* path;
    int FakeBatchApi::*made;
  };
  for (Lost lost : {Lost{"/files", &FakeBatchApi::uploads},
                    Lost{"/batches", &FakeBatchApi::creations}}) {
    std::string path = lost.path;
    CAPTURE(path);
    for (bool rerun : {false, true}) {
      CAPTURE(rerun);
      TempDir dir;
      std::string state = dir.path + "/ck.batch";
      FakeClock clock;
      FakeBatchApi api;
      bool lose = true;
      FakeTransport transport(&clock, [&](const HttpRequest& r) {
        HttpResponse response = api(r);
        if (lose && r.url.ends_with(lost.path) && r.method == "POST") {
          response = HttpResponse();
          response.transport_error = "Operation timed out";
        }
        return response;
      });
      OpenAiCodec codec(OpenAiTestConfig());
      auto first = std::make_unique<BatchApiRunner>(&transport, &clock, &codec,
                                                    RunnerConfig(state));
      first->Submit(MakeBatch(0, {"a"}));
      first->EndInput();
      bool ready;
      for (int i = 0; i < 20 && api.*lost.made == 0; ++i) first->Step(200, -1, &ready);
      lose = false;
      BatchApiRunner* runner = first.get();
      std::unique_ptr<BatchApiRunner> second;
      if (rerun) {
        first.reset();  // killed
        second = std::make_unique<BatchApiRunner>(&transport, &clock, &codec,
                                                  RunnerConfig(state));
        std::string err;
        REQUIRE(second->Load(&err));
        second->Submit(MakeBatch(0, {"a"}));
        second->EndInput();
        runner = second.get();
      }
      CHECK(RunAll(runner, {MakeBatch(0, {"a"})}).size() == 1);
      CHECK_FALSE(runner->fatal());
      CHECK(api.uploads == 1);
      CHECK(api.creations == 1);
      CHECK(Slurp(state).find("\"batch_id\":\"batch_1\"") != std::string::npos);
    }
  }
}

TEST_CASE("BatchApiRunner: a rerun creates the job of a file it uploaded, once") {
  TempDir dir;
  std::string state = dir.path + "/ck.batch";
  FakeClock clock;
  FakeBatchApi api;
  FakeTransport transport(&clock, [&api](const HttpRequest& r) { return api(r); });
  OpenAiCodec codec(OpenAiTestConfig());
  {
    BatchApiRunner first(&transport, &clock, &codec, RunnerConfig(state));
    first.Submit(MakeBatch(0, {"a"}));
    first.EndInput();
    bool ready;
    for (int i = 0; i < 20 && access(state.c_str(), F_OK) != 0; ++i)
      first.Step(200, -1, &ready);
  }  // killed after the upload, before POST /batches
  REQUIRE(api.creations == 0);
  BatchApiRunner second(&transport, &clock, &codec, RunnerConfig(state));
  std::string err;
  REQUIRE(second.Load(&err));
  second.Submit(MakeBatch(0, {"a"}));
  second.EndInput();
  CHECK(RunAll(&second, {MakeBatch(0, {"a"})}).size() == 1);
  CHECK(api.lists == 1);  // no job of that file yet
  CHECK(api.creations == 1);
  CHECK(api.uploads == 1);
}

TEST_CASE("BatchApiRunner: a result file left by a killed run is not taken") {
  TempDir dir;
  std::string state = dir.path + "/ck.batch";
  FakeClock clock;
  FakeBatchApi api;
  api.fail_line = 1;  // the output file comes empty, the error file has it
  FakeTransport transport(&clock, [&api](const HttpRequest& r) { return api(r); });
  OpenAiCodec codec(OpenAiTestConfig());
  BatchApiRunner runner(&transport, &clock, &codec, RunnerConfig(state));
  std::vector<Batch> batches = {MakeBatch(0, {"a"})};
  std::ofstream(runner.ResultPath(0, false))
      << R"({"custom_id":")" << RequestCustomId(batches[0])
      << R"(","response":{"status_code":200,"body":{"data":[{"index":0,"embedding":[9,9]}]}}})"
      << "\n";
  runner.Submit(batches[0]);
  runner.EndInput();
  std::vector<BatchResult> results = RunAll(&runner, batches);
  REQUIRE(results.size() == 1);
  CHECK(results[0].status == BatchResult::kRejected);
  CHECK(results[0].error == "bad input 1");
}

TEST_CASE("BatchApi reads the batch queue limit from a token_limit_exceeded job") {
  const std::string message =
      "Enqueued token limit reached for text-embedding-3-small in organization "
      "org-XXXX. Limit: 3,000,000 enqueued tokens. Please try again once some "
      "in_progress batches have been completed.";
  CHECK(ParseQueueLimit(message) == 3000000);
  CHECK(ParseQueueLimit("Limit: 90,000 enqueued tokens.") == 90000);
  CHECK(ParseQueueLimit("Limit: 7 enqueued tokens") == 7);
  CHECK(ParseQueueLimit("Enqueued token limit reached.") == 0);
  CHECK(ParseQueueLimit("Limit: , enqueued tokens") == 0);
  CHECK(ParseQueueLimit("Limit: 3,000 requests") == 0);
  CHECK(ParseQueueLimit("Limit: 99,999,999,999,999,999,999 enqueued tokens") == 0);
  BatchJobStatus s;
  std::string err;
  REQUIRE(ParseBatchObject(
      R"({"id":"batch_1","status":"failed","errors":{"object":"list","data":[)"
      R"({"code":"token_limit_exceeded","line":null,"param":null,"message":")" +
          message + R"("}]},"request_counts":{"total":0,"completed":0,"failed":0}})",
      &s, &err));
  CHECK(s.queue_full);
  CHECK(s.queue_limit == 3000000);
  CHECK(s.errors == message);
  // Another failure is not a full queue.
  REQUIRE(ParseBatchObject(
      R"({"id":"batch_2","status":"failed","errors":{"object":"list","data":[)"
      R"({"code":"invalid_file","line":3,"message":"Limit: 5 enqueued tokens"}]}})",
      &s, &err));
  CHECK_FALSE(s.queue_full);
  CHECK(s.queue_limit == 0);
}

TEST_CASE("BatchApi finds a file's job past the jobs refused for a full queue") {
  auto job = [](const char* id, const char* file, const char* status, bool refused) {
    return fmt::format(
        R"({{"id":"{}","input_file_id":"{}","status":"{}","errors":{}}})", id, file, status,
        refused ? R"({"data":[{"code":"token_limit_exceeded","message":"full"}]})" : "null");
  };
  BatchJobStatus s;
  std::string err;
  // Newest first: refused again after the live one was made, by a run that
  // did not know of it (killed before its sidecar said so).
  REQUIRE(FindBatchOfFile("{\"data\":[" + job("batch_3", "file-a", "failed", true) + "," +
                              job("batch_2", "file-b", "in_progress", false) + "," +
                              job("batch_1", "file-a", "in_progress", false) + "]}",
                          "file-a", &s, &err));
  CHECK(s.id == "batch_1");
  REQUIRE(FindBatchOfFile("{\"data\":[" + job("batch_3", "file-a", "failed", true) + "]}",
                          "file-a", &s, &err));
  CHECK(s.id.empty());
}

TEST_CASE("BatchApi queue rule: split what never fits, else create within the limit, else wait") {
  struct Case {
    uint64_t tokens, enqueued, limit;
    QueueVerdict want;
  };
  for (Case c : {Case{500, 400, 0, QueueVerdict::kCreate},        // limit not known
                 Case{500, 500, 1000, QueueVerdict::kCreate},     // exactly full
                 Case{500, 501, 1000, QueueVerdict::kWait},       // one of ours must end
                 Case{1000, 0, 1000, QueueVerdict::kCreate},
                 Case{1001, 0, 1000, QueueVerdict::kSplit},       // never fits alone
                 Case{1001, 1, 1000, QueueVerdict::kSplit}}) {    // ours need not end
    CAPTURE(c.tokens);
    CAPTURE(c.enqueued);
    CHECK(QueueRule(c.tokens, c.enqueued, c.limit) == c.want);
  }
}

TEST_CASE("BatchApiRunner: jobs refused for a full queue are created again, in turn") {
  // Three files of 2 tokens under a queue of 3: the first job runs, the
  // other two are refused (the limit is not yet known). Once the first
  // ends, one is created again; the last waits for that one to end (the
  // limit is known now), so no job is refused twice.
  TempDir dir;
  std::string state = dir.path + "/ck.batch";
  FakeClock clock;
  QueueApi api;
  FakeTransport transport(&clock, [&api](const HttpRequest& r) { return api(r); });
  OpenAiCodec codec(OpenAiTestConfig());
  BatchApiConfig config = RunnerConfig(state);
  config.limits.max_requests = 1;
  BatchApiRunner runner(&transport, &clock, &codec, config);
  std::vector<Batch> batches = {TokenBatch(0, {"a", "b"}), TokenBatch(1, {"c", "d"}),
                                TokenBatch(2, {"e", "f"})};
  for (const Batch& b : batches) runner.Submit(b);
  runner.EndInput();
  std::vector<BatchResult> results = RunAll(&runner, batches);
  REQUIRE(results.size() == 3);
  for (const BatchResult& r : results) CHECK(r.status == BatchResult::kEmbedded);
  CHECK(api.uploads == 3);  // no file uploaded twice
  CHECK(api.JobsByFile() == std::map<std::string, std::vector<bool>>{
                                {"file-1", {false}},
                                {"file-2", {true, false}},
                                {"file-3", {true, false}}});
  // Each job created again was made once the one before it ended.
  CHECK(api.jobs[3].file_id == "file-2");
  CHECK(api.jobs[3].tokens + api.jobs[0].tokens > api.limit);
  CHECK(api.jobs[0].polls >= 2);
  // The sidecar names the live jobs, not the refused ones.
  std::vector<StoredJob> stored;
  std::string err;
  REQUIRE(ParseStoredJobs(Slurp(state), &stored, &err));
  std::vector<std::string> ids;
  for (const StoredJob& j : stored) ids.push_back(j.batch_id);
  CHECK(ids == std::vector<std::string>{"batch_1", "batch_4", "batch_5"});
  CHECK(access(runner.UploadPath(1).c_str(), F_OK) != 0);  // gone once it ran
}

TEST_CASE("BatchApiRunner: the wait after a refusal grows while others fill the queue") {
  // Another client's job holds the whole queue for our first five jobs:
  // each is refused, and the next is created after the first poll (250 ms)
  // and a wait on the poll schedule that grows with each refusal.
  TempDir dir;
  std::string state = dir.path + "/ck.batch";
  FakeClock clock;
  QueueApi api;
  api.others = api.limit;
  FakeTransport transport(&clock, [&api](const HttpRequest& r) {
    HttpResponse response = api(r);
    if (api.jobs.size() == 5) api.others = 0;
    return response;
  });
  OpenAiCodec codec(OpenAiTestConfig());
  BatchApiRunner runner(&transport, &clock, &codec, RunnerConfig(state));
  std::vector<Batch> batches = {TokenBatch(0, {"a", "b"})};
  runner.Submit(batches[0]);
  runner.EndInput();
  std::vector<BatchResult> results = RunAll(&runner, batches, 1000);
  REQUIRE(results.size() == 1);
  CHECK(results[0].status == BatchResult::kEmbedded);
  std::vector<int64_t> creates;
  for (size_t i = 0; i < transport.sent.size(); ++i)
    if (transport.sent[i].method == "POST" && transport.sent[i].url.ends_with("/batches"))
      creates.push_back(transport.sent_ms[i]);
  REQUIRE(creates.size() == 6);
  for (size_t i = 1; i < creates.size(); ++i) {
    CAPTURE(i);
    CHECK(creates[i] - creates[i - 1] == PollDelayMs(0) + PollDelayMs(static_cast<int>(i)));
  }
}

TEST_CASE("BatchApiRunner: a file over the queue limit alone is split and run in turn") {
  TempDir dir;
  std::string state = dir.path + "/ck.batch";
  FakeClock clock;
  QueueApi api;
  FakeTransport transport(&clock, [&api](const HttpRequest& r) { return api(r); });
  OpenAiCodec codec(OpenAiTestConfig());
  BatchApiRunner runner(&transport, &clock, &codec, RunnerConfig(state));
  std::vector<Batch> batches = {TokenBatch(0, {"a", "b"}), TokenBatch(1, {"c"}),
                                TokenBatch(2, {"d", "e"}), TokenBatch(3, {"f", "g", "h"})};
  for (const Batch& b : batches) runner.Submit(b);
  runner.EndInput();
  std::vector<BatchResult> results = RunAll(&runner, batches);
  REQUIRE(results.size() == 4);
  for (const BatchResult& r : results) CHECK(r.status == BatchResult::kEmbedded);
  // file-1 holds 8 tokens; its lines go, in order, to files of at most 3.
  CHECK(api.uploads == 4);
  CHECK(api.JobsByFile() == std::map<std::string, std::vector<bool>>{
                                {"file-1", {true}},
                                {"file-2", {false}},
                                {"file-3", {false}},
                                {"file-4", {false}}});
  std::vector<uint64_t> tokens;
  for (const QueueApi::Job& j : api.jobs) tokens.push_back(j.tokens);
  CHECK(tokens == std::vector<uint64_t>{8, 3, 2, 3});
  std::string split;
  for (const char* id : {"file-2", "file-3", "file-4"}) split += api.files[id];
  CHECK(split == api.files["file-1"]);
  for (size_t n = 0; n < 4; ++n) CHECK(access(runner.UploadPath(n).c_str(), F_OK) != 0);
  std::vector<StoredJob> stored;
  std::string err;
  REQUIRE(ParseStoredJobs(Slurp(state), &stored, &err));
  CHECK(stored.size() == 3);  // the split file is dropped
}

TEST_CASE("BatchApiRunner: a file over the queue limit is split while one of ours runs") {
  // file-1 holds two requests of 2 tokens, file-2 one of 1. file-1's job is
  // refused (the limit, 3, is not yet known) while file-2's runs: file-1 is
  // split then, and its first part runs beside file-2's job.
  TempDir dir;
  std::string state = dir.path + "/ck.batch";
  FakeClock clock;
  QueueApi api;
  FakeTransport transport(&clock, [&api](const HttpRequest& r) { return api(r); });
  OpenAiCodec codec(OpenAiTestConfig());
  BatchApiConfig config = RunnerConfig(state);
  config.limits.max_inputs = 4;
  BatchApiRunner runner(&transport, &clock, &codec, config);
  std::vector<Batch> batches = {TokenBatch(0, {"a", "b"}), TokenBatch(1, {"c", "d"}),
                                TokenBatch(2, {"e"})};
  for (const Batch& b : batches) runner.Submit(b);
  runner.EndInput();
  std::vector<BatchResult> results = RunAll(&runner, batches);
  REQUIRE(results.size() == 3);
  for (const BatchResult& r : results) CHECK(r.status == BatchResult::kEmbedded);
  REQUIRE(api.jobs.size() == 4);
  CHECK(api.JobsByFile() == std::map<std::string, std::vector<bool>>{
                                {"file-1", {true}},
                                {"file-2", {false}},
                                {"file-3", {false}},
                                {"file-4", {false}}});
  CHECK(api.jobs[2].file_id == "file-3");
  CHECK(api.jobs[2].beside == 1);  // file-2's job had not ended
}

TEST_CASE("BatchApiRunner: a rerun finds the job made again after a refusal") {
  // The job of file-2 is refused, made again, and the answer is lost as
  // the run is killed: its sidecar still names the refused job. The rerun
  // polls that, finds the live one past it, and makes none.
  TempDir dir;
  std::string state = dir.path + "/ck.batch";
  FakeClock clock;
  QueueApi api;
  FakeTransport transport(&clock, [&api](const HttpRequest& r) { return api(r); });
  OpenAiCodec codec(OpenAiTestConfig());
  BatchApiConfig config = RunnerConfig(state);
  config.limits.max_requests = 1;
  std::vector<Batch> batches = {TokenBatch(0, {"a", "b"}), TokenBatch(1, {"c", "d"})};
  {
    BatchApiRunner first(&transport, &clock, &codec, config);
    for (const Batch& b : batches) first.Submit(b);
    first.EndInput();
    bool ready;
    for (int i = 0; i < 200 && api.jobs.size() < 3; ++i) {
      api.lose_creations = api.jobs.size() == 2;
      first.Step(200, -1, &ready);
    }
    REQUIRE(api.jobs.size() == 3);
  }
  api.lose_creations = false;
  REQUIRE(Slurp(state).find("\"batch_2\"") != std::string::npos);
  BatchApiRunner second(&transport, &clock, &codec, config);
  std::string err;
  REQUIRE(second.Load(&err));
  for (const Batch& b : batches) second.Submit(b);
  second.EndInput();
  std::vector<BatchResult> results = RunAll(&second, batches);
  REQUIRE(results.size() == 2);
  for (const BatchResult& r : results) CHECK(r.status == BatchResult::kEmbedded);
  CHECK(api.jobs.size() == 3);
  CHECK(api.JobsByFile() == std::map<std::string, std::vector<bool>>{
                                {"file-1", {false}}, {"file-2", {true, false}}});
}

TEST_CASE("BatchApiRunner: a stored file over the queue limit alone is sent again, split") {
  // The run that uploaded the file is killed before its job is refused;
  // the rerun has not the file's lines at hand to split it: its requests
  // fail with the job, and the sidecar forgets the file, so that the next
  // run sends them anew and splits the file it forms.
  TempDir dir;
  std::string state = dir.path + "/ck.batch";
  FakeClock clock;
  QueueApi api;
  FakeTransport transport(&clock, [&api](const HttpRequest& r) { return api(r); });
  OpenAiCodec codec(OpenAiTestConfig());
  std::vector<Batch> batches = {TokenBatch(0, {"a", "b"}), TokenBatch(1, {"c", "d"})};
  {
    BatchApiRunner first(&transport, &clock, &codec, RunnerConfig(state));
    for (const Batch& b : batches) first.Submit(b);
    first.EndInput();
    bool ready;
    for (int i = 0; i < 20 && api.jobs.empty(); ++i) first.Step(200, -1, &ready);
  }
  REQUIRE(api.jobs.size() == 1);
  {
    BatchApiRunner second(&transport, &clock, &codec, RunnerConfig(state));
    std::string err;
    REQUIRE(second.Load(&err));
    for (const Batch& b : batches) second.Submit(b);
    second.EndInput();
    std::vector<BatchResult> results = RunAll(&second, batches);
    REQUIRE(results.size() == 2);
    for (const BatchResult& r : results) {
      CHECK(r.status == BatchResult::kFailed);
      CHECK(r.error.find("Limit: 3 enqueued tokens") != std::string::npos);
    }
    CHECK(Slurp(state).empty());
  }
  BatchApiRunner third(&transport, &clock, &codec, RunnerConfig(state));
  std::string err;
  REQUIRE(third.Load(&err));
  for (const Batch& b : batches) third.Submit(b);
  third.EndInput();
  std::vector<BatchResult> results = RunAll(&third, batches);
  REQUIRE(results.size() == 2);
  for (const BatchResult& r : results) CHECK(r.status == BatchResult::kEmbedded);
  CHECK(api.uploads == 4);  // the file, again, then its two parts
  CHECK(api.JobsByFile() == std::map<std::string, std::vector<bool>>{
                                {"file-1", {true}}, {"file-2", {true}},
                                {"file-3", {false}}, {"file-4", {false}}});
}

TEST_CASE("BatchApiRunner: one request over the queue limit is rejected, not split") {
  TempDir dir;
  std::string state = dir.path + "/ck.batch";
  FakeClock clock;
  QueueApi api;
  FakeTransport transport(&clock, [&api](const HttpRequest& r) { return api(r); });
  OpenAiCodec codec(OpenAiTestConfig());
  BatchApiRunner runner(&transport, &clock, &codec, RunnerConfig(state));
  std::vector<Batch> batches = {TokenBatch(0, {"a", "b", "c", "d"})};
  runner.Submit(batches[0]);
  runner.EndInput();
  std::vector<BatchResult> results = RunAll(&runner, batches);
  REQUIRE(results.size() == 1);
  CHECK(results[0].status == BatchResult::kFailed);
  CHECK(results[0].error.find("Limit: 3 enqueued tokens") != std::string::npos);
  CHECK(api.uploads == 1);
  CHECK(api.jobs.size() == 1);
  CHECK(access(runner.UploadPath(0).c_str(), F_OK) != 0);
}
