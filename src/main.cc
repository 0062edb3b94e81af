// embedpipe's entry point: flags, the API key, the transport; then the run.
#include <cstdlib>
#include <string>
#include <unistd.h>

#include "cli.h"
#include "curl_transport.h"
#include "diag.h"
#include "exit_status.h"
#include "interrupt.h"
#include "pipeline.h"
#include "version.h"

int main(int argc, char** argv) {
  Options options;
  int exit_code = kExitSuccess;
  if (!ParseCommandLine(argc, argv, &options, &exit_code)) return exit_code;
  diag::SetQuiet(options.quiet);
  InstallSignalHandlers();

  const char* key = std::getenv(options.api_key_env.c_str());
  std::string api_key = key ? key : "";
  if (api_key.empty() && options.base_url == Options().base_url &&
      !options.count_tokens) {
    diag::Error(options.api_key_env +
                " is not set: export the API key in it, or name another "
                "variable with --api-key-env");
    return kExitUsage;
  }

  CurlTransportConfig config;
  config.connect_timeout_ms = static_cast<long>(options.connect_timeout_s * 1000);
  config.timeout_ms = static_cast<long>(options.timeout_s * 1000);
  config.stall_timeout_s = options.stall_timeout_s;
  config.max_connections = static_cast<size_t>(options.concurrency) * 2;
  config.user_agent = "embedpipe/" EMBEDPIPE_VERSION;
  std::string err;
  std::unique_ptr<Transport> transport = NewCurlTransport(config, &err);
  if (!transport) {
    diag::Error(err);
    return kExitUsage;
  }
  SystemClock clock;
  return RunPipeline(options, api_key, transport.get(), &clock, STDOUT_FILENO);
}
