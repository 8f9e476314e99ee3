// `magrq run` and `magrq calibrate`: the MPI entry points. Each rank has one catch point:
// an error is logged with the rank and ends every rank through MPI_Abort, so a failure
// on one rank never leaves the others waiting.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <string>

#include "app/commands.hpp"
#include "app/mpi_main.hpp"
#include "app/experiment.hpp"
#include "app/run_job.hpp"
#include "core/error.hpp"
#include "dist/comm.hpp"
#include "dist/peak_memory.hpp"

namespace magrq::app {

namespace {

struct RunArguments {
  std::string experiment;
  RunFlags flags;
};

int run_under_mpi(const RunArguments& arguments) {
  return run_on_all_ranks(
      [&](const dist::Comm& comm) { return run_experiment(comm, arguments.experiment, arguments.flags); });
}

}  // namespace

void add_run_command(CLI::App& root, CommandTable& table) {
  auto arguments = std::make_shared<RunArguments>();
  CLI::App* sub = root.add_subcommand(
      "run", "Run an experiment: calibrate, MagR + quantize, export, verify, evaluate (under mpirun)");
  sub->add_option("experiment", arguments->experiment, "Experiment YAML file (see docs/config.md)")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_flag("--dry-run", arguments->flags.dry_run, "Print the plan and stop before any heavy work");
  sub->add_flag("--restart", arguments->flags.restart,
                "Start over: discard the journal in output.dir and a Hessian store made with other settings");
  table[sub] = [arguments] { return run_under_mpi(*arguments); };

  auto calibrate = std::make_shared<RunArguments>();
  calibrate->flags.calibrate_only = true;
  CLI::App* calibrate_sub = root.add_subcommand(
      "calibrate", "Compute and store the Hessians of an experiment (mode independent), then stop");
  calibrate_sub->add_option("experiment", calibrate->experiment, "Experiment YAML file")
      ->required()
      ->check(CLI::ExistingFile);
  table[calibrate_sub] = [calibrate] { return run_under_mpi(*calibrate); };

  CLI::App* reference = root.add_subcommand(
      "config-reference", "Print every experiment-file key with its default and meaning (Markdown)");
  table[reference] = [] {
    ExperimentConfig defaults;
    std::fputs(declare_experiment_schema(defaults).markdown_reference().c_str(), stdout);
    return 0;
  };
}

}  // namespace magrq::app
