// embedpipe's entry point: flags, the API key, the transport; then the run.
#include <errno.h>
#include <malloc.h>
#include <string.h>

#include <cstdlib>
#include <string>
#include <string_view>
#include <unistd.h>

#include "app/api_key.h"
#include "app/cli.h"
#include "app/diag.h"
#include "app/exit_status.h"
#include "app/interrupt.h"
#include "app/pipeline.h"
#include "providers/provider.h"
#include "transport/curl_transport.h"
#include "transport/redact.h"
#include "version.h"

int main(int argc, char** argv) {
  // Requests, responses and batches of records are megabytes each, freed
  // and allocated again all run long. By default glibc hands the free top
  // of the heap back to the kernel past 128 KiB, and the next one faults
  // its pages in afresh: 37,000 page faults and 0.2 s of system time for
  // 19,207 records (no latency, -j 5). Keeping 64 MiB of address space at
  // the top costs no memory until used: 6,000 faults, the same peak RSS.
  mallopt(M_TOP_PAD, 64 << 20);
  Options options;
  int exit_code = kExitSuccess;
  if (!ParseCommandLine(argc, argv, &options, &exit_code)) return exit_code;
  diag::SetQuiet(options.quiet);
  bool terminal = isatty(STDERR_FILENO);
  const char* term = std::getenv("TERM");
  if (term && std::string_view(term) == "dumb") terminal = false;
  // https://no-color.org: set and not empty means no color.
  const char* no_color = std::getenv("NO_COLOR");
  diag::SetColor(terminal && !(no_color && *no_color));
  ProgressMode progress = ProgressMode::kNone;
  if (!options.quiet) ParseProgressMode(options.progress, terminal, &progress);
  InstallSignalHandlers();

  std::string api_key, warning, err;
  if (!ReadApiKey(options.api_key_file, options.api_key_env, &api_key,
                  &warning, &err)) {
    diag::Error(err);
    return kExitUsage;
  }
  if (!warning.empty()) diag::Warning(warning);
  if (!options.ca_file.empty() && access(options.ca_file.c_str(), R_OK) != 0) {
    diag::Error(fmt::format("cannot read CA bundle {}: {}", options.ca_file,
                            strerror(errno)));
    return kExitUsage;
  }
  if (api_key.empty() && KeyRequired(options) && !options.count_tokens &&
      !options.dry_run) {
    diag::Error(options.api_key_env +
                " is not set: export the API key in it, name another "
                "variable with --api-key-env, or use --api-key-file");
    return kExitUsage;
  }

  CurlTransportConfig config;
  config.connect_timeout_ms = static_cast<long>(options.connect_timeout_s * 1000);
  config.timeout_ms = static_cast<long>(options.timeout_s * 1000);
  config.stall_timeout_s = options.stall_timeout_s;
  config.max_connections = static_cast<size_t>(RequestSlots(options)) * 2;
  config.user_agent = "embedpipe/" EMBEDPIPE_VERSION;
  config.ca_file = options.ca_file;
  std::unique_ptr<Transport> transport = NewCurlTransport(config, &err);
  if (!transport) {
    diag::Error(err);
    return kExitUsage;
  }
  // What servers and proxies answer reaches every message, file and
  // progress line through here, so it is the one place the key is scrubbed.
  transport = NewRedactingTransport(std::move(transport), api_key);
  SystemClock clock;
  return RunPipeline(options, api_key, transport.get(), &clock, STDOUT_FILENO,
                     progress);
}
