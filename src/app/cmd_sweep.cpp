// `magrq sweep EXPERIMENT`: runs the points of an experiment's sweep section (see
// sweep.hpp) one after another, or one point of a job array, sharing one Hessian store,
// and gathers their reports into sweep.csv and sweep.md.
//
// --list, --count and --gather need no MPI and print or write on the first process only.
// The other modes run under mpirun like `magrq run`, with one catch point per rank.
//
// Store sharing: the points differ only in keys outside the model, calibration and store
// sections, and calibration is independent, so every point has the same store
// fingerprint. The first run that finds no complete store computes it (as `magrq run`
// does), and the others reuse it. Job-array tasks that start together while no store
// exists each compute it. The store is written under a temporary name per process and
// renamed into place. Calibration gives the same Hessians for any number of ranks, so
// the last rename wins with the same content. Running --calibrate-only first avoids the
// duplicate work.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>

#include "app/commands.hpp"
#include "app/mpi_main.hpp"
#include "app/logging.hpp"
#include "app/report_compare.hpp"
#include "app/run_job.hpp"
#include "app/run_settings.hpp"
#include "app/sweep.hpp"
#include "app/sweep_table.hpp"
#include "core/error.hpp"
#include "core/timing.hpp"
#include "dist/comm.hpp"
#include "store/atomic_file.hpp"
#include "store/hessian_store.hpp"

namespace magrq::app {

namespace {

struct SweepArguments {
  std::string experiment;
  bool list = false;
  bool count = false;
  bool gather = false;
  std::optional<int64_t> index;  // absent: every point
  RunFlags flags;
};

std::string point_title(const Sweep& sweep, const SweepPoint& point) {
  return "point " + std::to_string(point.index) + " of " + std::to_string(sweep.points.size()) + " (" +
         point.name + ")";
}

// Writes the point's experiment file into its folder (rank 0) and returns its path.
std::filesystem::path write_point_file(const dist::Comm& comm, const Sweep& sweep, const SweepPoint& point) {
  const std::filesystem::path file = point_dir(sweep, point) / "experiment.yaml";
  if (comm.is_coordinator()) {
    std::filesystem::create_directories(point_dir(sweep, point));
    store::write_text_atomically(file, point_yaml(sweep, point));
  }
  comm.barrier();
  return file;
}

// Logs whether the point will reuse the shared store, naming its path and fingerprint.
void log_store_state(const Sweep& sweep, const SweepPoint& point) {
  const std::filesystem::path path = point.config.store.path;
  const std::string title = point_title(sweep, point);
  if (!std::filesystem::exists(path)) {
    spdlog::info("sweep: {}: no Hessian store at {} yet; this point computes it", title, path.string());
    return;
  }
  const store::Fingerprint expected = store_fingerprint(point.config);
  const store::HessianStoreReader reader(path);
  if (const auto difference = reader.header().fingerprint.describe_difference(expected)) {
    spdlog::warn("sweep: {}: the Hessian store {} belongs to other settings ({}); the run stops unless "
                 "--restart replaces the store", title, path.string(), *difference);
    return;
  }
  for (int64_t layer = 0; layer < reader.header().num_layers; ++layer) {
    if (!reader.has_layer(layer)) {
      spdlog::info("sweep: {}: the Hessian store {} lacks layer {}; this point computes it", title,
                   path.string(), layer);
      return;
    }
  }
  spdlog::info("sweep: {}: reusing the Hessian store {} (fingerprint {})", title, path.string(),
               store::content_hash(expected.to_json()).substr(0, 16));
}

// A point is finished when its report.json records the same configuration; --restart
// runs it again.
bool point_finished(const Sweep& sweep, const SweepPoint& point) {
  const auto report_path = point_dir(sweep, point) / "report.json";
  std::ifstream stream(report_path);
  if (!stream) {
    return false;
  }
  ExperimentConfig copy = point.config;
  const nlohmann::ordered_json expected = declare_experiment_schema(copy).resolved();
  try {
    return nlohmann::ordered_json::parse(stream).at("configuration") == expected;
  } catch (const nlohmann::json::exception& error) {
    spdlog::warn("sweep: {}: {} cannot be read ({}); running the point again", point_title(sweep, point),
                 report_path.string(), error.what());
    return false;
  }
}

void run_point(const dist::Comm& comm, const Sweep& sweep, const SweepPoint& point, const RunFlags& flags) {
  const auto start = std::chrono::steady_clock::now();
  const std::filesystem::path file = write_point_file(comm, sweep, point);
  const bool skip = comm.any(comm.is_coordinator() && !flags.restart && !flags.dry_run &&
                             point_finished(sweep, point));
  if (skip) {
    if (comm.is_coordinator()) {
      spdlog::info("sweep: {}: already finished in {} with this configuration; skipped (--restart runs it again)",
                   point_title(sweep, point), point_dir(sweep, point).string());
    }
    return;
  }
  if (comm.is_coordinator() && flags.dry_run) {
    spdlog::info("sweep: {}: plan of experiment {}", point_title(sweep, point), file.string());
  } else if (comm.is_coordinator()) {
    spdlog::info("sweep: {}: starting, experiment {}", point_title(sweep, point), file.string());
    log_store_state(sweep, point);
  }
  comm.barrier();
  run_experiment(comm, file, flags);
  if (comm.is_coordinator() && !flags.dry_run) {
    spdlog::info("sweep: {}: finished in {:.1f} s", point_title(sweep, point), seconds_since(start));
  }
}

// Computes the shared store with point 0's experiment (every point has the same store
// fingerprint), or reuses it when it is complete.
void calibrate(const dist::Comm& comm, const Sweep& sweep, const RunFlags& flags) {
  const SweepPoint& first = sweep.points.front();
  const std::filesystem::path file = write_point_file(comm, sweep, first);
  if (comm.is_coordinator()) {
    spdlog::info("sweep: calibrating the shared Hessian store {} with the experiment of {}",
                 first.config.store.path, point_title(sweep, first));
  }
  RunFlags calibrate_flags = flags;
  calibrate_flags.calibrate_only = true;
  run_experiment(comm, file, calibrate_flags);
}

// Writes sweep.csv, sweep.md and the comparison report of the finished points.
void gather(const Sweep& sweep) {
  const SweepTable table = gather_sweep(sweep);
  std::vector<std::filesystem::path> finished;
  for (const SweepRow& row : table.rows) {
    const SweepPoint& point = sweep.points[row.index];
    if (row.results) {
      finished.push_back(point_dir(sweep, point));
    } else {
      spdlog::warn("gather: {}: missing ({} not found)", point_title(sweep, point),
                   (point_dir(sweep, point) / "report.json").string());
    }
  }
  std::filesystem::create_directories(sweep.dir);
  store::write_text_atomically(sweep.dir / "sweep.csv", sweep_csv(table));
  store::write_text_atomically(sweep.dir / "sweep.md", sweep_markdown(table, "Sweep " + sweep.file));
  spdlog::info("gather: wrote {} and {} ({} of {} points finished)", (sweep.dir / "sweep.csv").string(),
               (sweep.dir / "sweep.md").string(), finished.size(), sweep.points.size());
  if (finished.empty()) {
    spdlog::warn("gather: no finished point, so no comparison report");
    return;
  }
  write_comparison_report(finished, sweep.dir);
  spdlog::info("gather: wrote the comparison report {}", (sweep.dir / "report.md").string());
}

const SweepPoint& selected_point(const Sweep& sweep, int64_t index) {
  if (index < 0 || index >= static_cast<int64_t>(sweep.points.size())) {
    throw ConfigError("--index " + std::to_string(index) + " is out of range: the sweep in " + sweep.file +
                      " has points 0 to " + std::to_string(sweep.points.size() - 1));
  }
  return sweep.points[static_cast<size_t>(index)];
}

// The modes that run points, on every rank of comm.
int run_points(const dist::Comm& comm, const SweepArguments& arguments) {
  const Sweep sweep = load_sweep(arguments.experiment);
  if (arguments.index) {
    run_point(comm, sweep, selected_point(sweep, *arguments.index), arguments.flags);
    return 0;
  }
  if (arguments.flags.calibrate_only) {
    calibrate(comm, sweep, arguments.flags);
    return 0;
  }
  if (comm.is_coordinator()) {
    spdlog::info("sweep: {} points in {}", sweep.points.size(), sweep.file);
  }
  if (!arguments.flags.dry_run) {
    calibrate(comm, sweep, arguments.flags);
  }
  for (const SweepPoint& point : sweep.points) {
    run_point(comm, sweep, point, arguments.flags);
  }
  if (comm.is_coordinator() && !arguments.flags.dry_run) {
    gather(sweep);
  }
  comm.barrier();
  return 0;
}

int run_under_mpi(const SweepArguments& arguments) {
  return run_on_all_ranks([&](const dist::Comm& comm) { return run_points(comm, arguments); });
}

// --list, --count and --gather: no MPI; only the launcher's first process acts, so that
// they also behave under mpirun.
int run_without_mpi(const SweepArguments& arguments) {
  if (launcher_rank() != 0) {
    return 0;
  }
  const Sweep sweep = load_sweep(arguments.experiment);
  if (arguments.list) {
    std::fputs(format_point_list(sweep).c_str(), stdout);
  } else if (arguments.count) {
    std::printf("%zu\n", sweep.points.size());
  } else {
    gather(sweep);
  }
  return 0;
}

}  // namespace

void add_sweep_command(CLI::App& root, CommandTable& table) {
  auto arguments = std::make_shared<SweepArguments>();
  CLI::App* sub = root.add_subcommand(
      "sweep", "Run the points of an experiment's sweep section with one shared Hessian store, then gather "
               "sweep.csv and sweep.md (under mpirun; see docs/sweeps.md)");
  sub->add_option("experiment", arguments->experiment, "Experiment YAML file with a sweep section")
      ->required()
      ->check(CLI::ExistingFile);

  CLI::Option* list = sub->add_flag("--list", arguments->list, "Print one line INDEX NAME per point and stop");
  CLI::Option* count = sub->add_flag("--count", arguments->count, "Print the number of points and stop");
  auto index_value = std::make_shared<int64_t>(0);
  CLI::Option* index = sub->add_option("--index", *index_value,
                                       "Run only the point with this 0-based index (one task of a job array)");
  CLI::Option* calibrate_only = sub->add_flag("--calibrate-only", arguments->flags.calibrate_only,
                                              "Compute the shared Hessian store and stop");
  CLI::Option* gather_only = sub->add_flag(
      "--gather", arguments->gather, "Write sweep.csv, sweep.md and the comparison report of the finished points");
  CLI::Option* restart = sub->add_flag(
      "--restart", arguments->flags.restart,
      "Run finished points again, discard their journals and replace a Hessian store made with other settings");
  CLI::Option* dry_run = sub->add_flag("--dry-run", arguments->flags.dry_run,
                                       "Print each point's plan and stop before any heavy work");

  const std::vector<CLI::Option*> modes = {list, count, index, calibrate_only, gather_only};
  for (CLI::Option* mode : modes) {
    for (CLI::Option* other : modes) {
      if (mode != other) {
        mode->excludes(other);
      }
    }
  }
  for (CLI::Option* query : {list, count, gather_only}) {
    query->excludes(restart);
    query->excludes(dry_run);
  }

  table[sub] = [arguments, index, index_value] {
    if (index->count() > 0) {
      arguments->index = *index_value;
    }
    if (arguments->list || arguments->count || arguments->gather) {
      return run_without_mpi(*arguments);
    }
    return run_under_mpi(*arguments);
  };
}

}  // namespace magrq::app
