// magrq: MagR preprocessing plus RTN or GPTQ quantization of Llama-family models.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <exception>
#include <string>

#include "app/commands.hpp"
#include "app/logging.hpp"
#include "core/error.hpp"

namespace {

// Exit codes: 0 success, 1 bad data or numerical failure, 2 bad usage or options,
// 3 an internal error (a bug in magrq).
constexpr int kExitDataError = 1;
constexpr int kExitUsageError = 2;
constexpr int kExitInternalError = 3;

// Runs the deepest selected subcommand that has an entry (for example `hessians inspect`).
int run_selected(const CLI::App& app, const magrq::app::CommandTable& table) {
  for (const CLI::App* sub : app.get_subcommands()) {
    const auto found = table.find(sub);
    if (found != table.end()) {
      return found->second();
    }
    return run_selected(*sub, table);
  }
  return kExitUsageError;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App root{"magrq " MAGRQ_VERSION ": MagR weight magnitude reduction and GPTQ/RTN "
                "quantization of Llama-family models"};
  root.set_version_flag("--version", std::string("magrq ") + MAGRQ_VERSION);
  root.require_subcommand(1);
  std::string log_level = "info";
  root.add_option("--log-level", log_level, "Log level: trace, debug, info, warn, error, off")
      ->capture_default_str();

  magrq::app::CommandTable table;
  magrq::app::add_eval_command(root, table);
  magrq::app::add_generate_command(root, table);
  magrq::app::add_layer_command(root, table);
  magrq::app::add_report_command(root, table);
  magrq::app::add_run_command(root, table);
  magrq::app::add_verify_command(root, table);
  magrq::app::add_hessians_command(root, table);
  magrq::app::add_synth_command(root, table);
  magrq::app::add_synth_layer_command(root, table);
  magrq::app::add_sweep_command(root, table);
  magrq::app::add_tokenize_command(root, table);

  try {
    root.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return root.exit(error);
  }

  try {
    magrq::app::setup_logging(magrq::app::launcher_rank(), log_level);
    return run_selected(root, table);
  } catch (const magrq::ConfigError& error) {
    spdlog::error("{}", error.what());
    return kExitUsageError;
  } catch (const magrq::InternalError& error) {
    spdlog::critical("{}", error.what());
    return kExitInternalError;
  } catch (const std::exception& error) {
    spdlog::error("{}", error.what());
    return kExitDataError;
  }
}
