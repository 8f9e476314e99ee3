#include "app/run_job.hpp"

#include <sched.h>
#include <spdlog/spdlog.h>

#include <omp.h>

#include <chrono>
#include <cstdlib>
#include <thread>
#include <map>
#include <memory>
#include <mutex>

#include "app/experiment.hpp"
#include "app/report_compare.hpp"
#include "app/run_report.hpp"
#include "app/run_settings.hpp"
#include "core/error.hpp"
#include "core/timing.hpp"
#include "dist/calibrate.hpp"
#include "dist/evaluate.hpp"
#include "dist/plan.hpp"
#include "dist/scheduler.hpp"
#include "model/calibration_windows.hpp"
#include "model/gptq_checkpoint.hpp"
#include "model/tokenizer.hpp"
#include "store/hessian_store.hpp"
#include "store/journal.hpp"

// OpenBLAS's thread count setter (the build requires OpenBLAS, see CMakeLists.txt).
extern "C" void openblas_set_num_threads(int threads);

namespace magrq::app {

namespace {

using Clock = std::chrono::steady_clock;

std::string format_duration(double seconds) {
  const auto total = static_cast<long long>(seconds + 0.5);
  char text[32];
  std::snprintf(text, sizeof(text), "%02lld:%02lld:%02lld", total / 3600, (total / 60) % 60, total % 60);
  return text;
}

class RunJob {
 public:
  RunJob(const dist::Comm& comm, ExperimentConfig config, std::filesystem::path experiment_file,
         RunFlags flags)
      : comm_(comm), config_(std::move(config)), experiment_file_(std::move(experiment_file)), flags_(flags) {}

  int execute();

 private:
  // Phases.
  void plan();
  // Plan checks: windows longer than the model's positions (a warning), modules kept in
  // full precision (a warning each) and a plan with nothing to quantize (an error).
  void warn_long_windows() const;
  void require_quantized_modules() const;
  void sample_windows();
  void open_journal();
  void calibrate_independent();
  void quantize_independent();
  void run_sequential();
  void export_outputs();
  void evaluate();
  void finish_report();

  // Steps.
  std::filesystem::path store_path() const { return config_.store.path; }
  bool sequential() const { return config_.calibration.mode == "sequential"; }
  store::StoreLayout store_layout() const;
  bool store_complete() const;
  // With --restart, deletes a store whose fingerprint differs from this run's.
  void replace_mismatched_store_on_restart() const;
  void write_layer_hessians(store::HessianStoreWriter* writer, int64_t layer,
                            const std::optional<std::map<std::string, store::StoredHessian>>& hessians);
  std::vector<int64_t> pending_items(std::optional<int64_t> layer) const;
  void quantize(const std::vector<int64_t>& items);
  nlohmann::ordered_json process_item(int64_t item_id);
  void on_item_finished(int64_t item_id, int rank, const nlohmann::ordered_json& statistics);
  const Matrix& hessian_for(int64_t layer, const std::string& input);
  model::QuantizedModule assemble_module(size_t module_index) const;
  model::DecoderLayerWeights quantized_layer(int64_t layer) const;

  const dist::Comm& comm_;
  ExperimentConfig config_;
  std::filesystem::path experiment_file_;
  RunFlags flags_;
  std::unique_ptr<model::Checkpoint> checkpoint_;
  std::unique_ptr<model::Tokenizer> tokenizer_;
  dist::Plan plan_;
  model::CalibrationWindows windows_;
  store::Fingerprint store_fingerprint_;
  std::unique_ptr<store::Journal> journal_;
  std::unique_ptr<store::HessianStoreReader> store_reader_;
  std::string cached_hessian_key_;
  Matrix cached_hessian_;
  RunReport report_;

  // Coordinator bookkeeping (touched by the coordinator thread on rank 0).
  std::mutex progress_mutex_;
  int64_t finished_in_schedule_ = 0;
  int64_t scheduled_ = 0;
  Clock::time_point schedule_start_;
  std::vector<std::string> fallback_modules_;
  dist::ScheduleTimes times_;
};

store::StoreLayout RunJob::store_layout() const {
  if (config_.store.layout == "single") {
    return store::StoreLayout::single;
  }
  if (config_.store.layout == "per_layer") {
    return store::StoreLayout::per_layer;
  }
  return sequential() ? store::StoreLayout::per_layer : store::StoreLayout::single;
}

// Checks before any heavy work that every text file the run reads exists, so a wrong
// evaluation path is not found only after quantization.
void require_text_sources(const ExperimentConfig& config) {
  std::vector<std::pair<std::string, std::string>> sources = {{"calibration.source", config.calibration.source}};
  for (const std::string& source : config.evaluation.sources) {
    sources.emplace_back("evaluation.sources", source);
  }
  for (const auto& [key, source] : sources) {
    const model::TextSpec spec = model::TextSpec::parse(source);
    if (!std::filesystem::is_regular_file(spec.path)) {
      throw ConfigError(key + ": text file " + spec.path.string() + " of source " + source + " not found");
    }
  }
}

void RunJob::warn_long_windows() const {
  const Index positions = checkpoint_->config().max_position_embeddings;
  const std::pair<std::string, int64_t> windows[] = {{"calibration.seqlen", config_.calibration.seqlen},
                                                     {"evaluation.seqlen", config_.evaluation.seqlen}};
  for (const auto& [key, seqlen] : windows) {
    if (comm_.is_coordinator() && positions > 0 && seqlen > positions) {
      spdlog::warn("plan: {} {} exceeds the model's max_position_embeddings {}; positions beyond it were "
                   "never trained", key, seqlen, positions);
    }
  }
}

void RunJob::require_quantized_modules() const {
  int64_t kept_in_full_precision = 0;
  for (const dist::ModuleSpec& module : plan_.modules) {
    if (module.settings.skip && module.export_problem) {
      ++kept_in_full_precision;
      if (comm_.is_coordinator()) {
        spdlog::warn("plan: {} stays in full precision (output.unsupported_shape keep): {}", module.name,
                     *module.export_problem);
      }
    }
  }
  if (plan_.items.empty()) {
    throw ConfigError(detail::concat(
        "no module would be quantized (", kept_in_full_precision, " cannot be stored in the GPTQ layout and the "
        "others are skipped by overrides); use bits 2, 3, 4 or 8 with a group size that divides in_features, "
        "or set output.unsupported_shape to dequantized_only"));
  }
}

void RunJob::plan() {
  const auto start = Clock::now();
  require_text_sources(config_);
  checkpoint_ = std::make_unique<model::Checkpoint>(config_.model.path);
  tokenizer_ = std::make_unique<model::Tokenizer>(model::Tokenizer::from_directory(config_.model.path));
  dist::PlanOptions options;
  options.block_rows = config_.parallel.block_rows;
  options.memory_budget_bytes = static_cast<uint64_t>(config_.parallel.memory_budget_gib * (1ull << 30));
  options.magr = config_.magr.enabled;
  options.magr_iterations = config_.magr.iterations;
  options.magr_search_candidates = config_.magr.search_candidates();
  options.cd_iterations = config_.quantizer.cd_iterations;
  options.calibration_windows = config_.calibration.nsamples;
  options.calibration_seqlen = config_.calibration.seqlen;
  options.ranks = comm_.size();
  options.checkpoint_element_bytes = model::dtype_bits(checkpoint_->tensors().info("model.embed_tokens.weight").dtype) / 8;
  plan_ = dist::make_plan(resolve_modules(config_, checkpoint_->config()), options);
  if (comm_.is_coordinator()) {
    spdlog::info("plan: {} modules, {} work items, {} ranks", plan_.modules.size(), plan_.items.size(),
                 comm_.size());
    for (const std::string& line : split_lines(dist::format_plan(plan_))) {
      spdlog::log(flags_.dry_run ? spdlog::level::info : spdlog::level::debug, "plan | {}", line);
    }
  }
  dist::check_memory_budget(plan_, options.memory_budget_bytes);
  warn_long_windows();
  require_quantized_modules();
  report_.phase_seconds["plan"] = seconds_since(start);
}

void RunJob::sample_windows() {
  const auto spec = model::TextSpec::parse(config_.calibration.source);
  const bool bos = tokenizer_->adds_bos_by_default();
  model::CalibrationOptions options;
  options.nsamples = config_.calibration.nsamples;
  options.seqlen = config_.calibration.seqlen;
  options.seed = static_cast<uint64_t>(config_.calibration.seed);
  windows_ = model::sample_calibration_windows(
      spec, [&](std::string_view text) { return tokenizer_->encode(text, bos); }, options);
  if (comm_.is_coordinator()) {
    spdlog::info("calibration: {} windows of {} tokens from {} ({} tokens)", windows_.windows.size(),
                 options.seqlen, spec.spec, windows_.source_tokens);
  }
}

void RunJob::open_journal() {
  // Rank 0 creates or checks the journal first, so other ranks only open a valid one.
  if (comm_.is_coordinator()) {
    journal_ = std::make_unique<store::Journal>(config_.output.dir, run_fingerprint(config_), flags_.restart);
    for (const int64_t id : journal_->drop_unreadable()) {
      spdlog::warn("resume: journal item {} cannot be read and will be recomputed", id);
    }
    const auto done = journal_->finished();
    if (!done.empty()) {
      spdlog::info("resume: {} of {} items are already in {}", done.size(), plan_.items.size(),
                   journal_->directory().string());
    }
  }
  comm_.barrier();
  if (!comm_.is_coordinator()) {
    journal_ = std::make_unique<store::Journal>(config_.output.dir, run_fingerprint(config_), false);
  }
}

void RunJob::replace_mismatched_store_on_restart() const {
  if (!flags_.restart || !std::filesystem::exists(store_path())) {
    return;
  }
  const auto difference =
      store::HessianStoreReader(store_path()).header().fingerprint.describe_difference(store_fingerprint_);
  if (difference) {
    spdlog::warn("restart: replacing the Hessian store {} ({})", store_path().string(), *difference);
    std::filesystem::remove_all(store_path());
  }
}

bool RunJob::store_complete() const {
  if (!std::filesystem::exists(store_path())) {
    return false;
  }
  const store::HessianStoreReader reader(store_path());
  reader.require_fingerprint(store_fingerprint_);
  for (int64_t layer = 0; layer < checkpoint_->config().num_hidden_layers; ++layer) {
    if (!reader.has_layer(layer)) {
      return false;
    }
  }
  return true;
}

void RunJob::write_layer_hessians(store::HessianStoreWriter* writer, int64_t layer,
                                  const std::optional<std::map<std::string, store::StoredHessian>>& hessians) {
  if (!comm_.is_coordinator()) {
    return;
  }
  writer->write_layer(layer, *hessians);
  for (const auto& [input, hessian] : *hessians) {
    report_.add_hessian(layer, input, hessian.statistics);
    if (hessian.statistics.max_abs_activation > 65504.0) {
      spdlog::warn("layer {} {}: activation {:g} exceeds the float16 range; magrq computes in float32",
                   layer, input, hessian.statistics.max_abs_activation);
    }
  }
  spdlog::info("calibrate: layer {:3d} Hessians written", layer);
}

void RunJob::calibrate_independent() {
  const auto start = Clock::now();
  if (comm_.is_coordinator()) {
    replace_mismatched_store_on_restart();
    if (store_path().has_parent_path()) {
      std::filesystem::create_directories(store_path().parent_path());
    }
  }
  comm_.barrier();
  const bool reuse = config_.store.reuse && comm_.any(comm_.is_coordinator() && store_complete());
  if (reuse) {
    if (comm_.is_coordinator()) {
      spdlog::info("calibrate: reusing the Hessian store {} (fingerprint matches)", store_path().string());
    }
  } else {
    std::unique_ptr<store::HessianStoreWriter> writer;
    if (comm_.is_coordinator()) {
      store::HessianStoreHeader header{store_fingerprint_, model::flatten_positions(windows_.positions),
                                       checkpoint_->config().num_hidden_layers,
                                       config_.store.precision == "float32", store_layout()};
      writer = std::make_unique<store::HessianStoreWriter>(store_path(), header);
    }
    dist::WindowStates states(comm_, *checkpoint_, windows_.windows);
    for (int64_t layer = 0; layer < checkpoint_->config().num_hidden_layers; ++layer) {
      const auto hessians = states.run_layer(checkpoint_->load_layer(layer), true, true);
      write_layer_hessians(writer.get(), layer, hessians);
    }
    if (writer) {
      writer->commit();
    }
  }
  comm_.barrier();
  store_reader_ = std::make_unique<store::HessianStoreReader>(store_path());
  store_reader_->require_fingerprint(store_fingerprint_);
  report_.store_reused = reuse;
  const double seconds = seconds_since(start);
  report_.phase_seconds["calibrate"] += seconds;
  if (comm_.is_coordinator() && !reuse) {
    const double tokens = static_cast<double>(config_.calibration.nsamples * config_.calibration.seqlen);
    spdlog::info("calibrate: {} tokens through {} layers in {:.2f} s ({:.0f} tokens/s) on {} ranks", tokens,
                 checkpoint_->config().num_hidden_layers, seconds, tokens / seconds, comm_.size());
  }
}

std::vector<int64_t> RunJob::pending_items(std::optional<int64_t> layer) const {
  std::vector<int64_t> ids;
  for (const dist::WorkItem& item : plan_.items) {
    const auto& module = plan_.modules[static_cast<size_t>(item.module)];
    if (layer && module.layer != *layer) {
      continue;
    }
    if (!journal_->has(item.id)) {
      ids.push_back(item.id);
    }
  }
  return dist::schedule_order(plan_, ids);
}

const Matrix& RunJob::hessian_for(int64_t layer, const std::string& input) {
  const std::string key = std::to_string(layer) + "/" + input;
  if (key != cached_hessian_key_) {
    const store::StoredHessian stored = store_reader_->read(layer, input);
    // H is the mean of x x^T over tokens: any positive scaling gives the same GPTQ and
    // MagR results (alpha is stated on H / lambda_max), and the mean keeps reported output
    // errors per token.
    const double tokens = static_cast<double>(std::max<int64_t>(1, stored.statistics.tokens));
    cached_hessian_ = (stored.xtx / tokens).cast<float>();
    cached_hessian_key_ = key;
  }
  return cached_hessian_;
}

nlohmann::ordered_json RunJob::process_item(int64_t item_id) {
  const dist::WorkItem& item = plan_.items[static_cast<size_t>(item_id)];
  const dist::ModuleSpec& module = plan_.modules[static_cast<size_t>(item.module)];
  const std::string input = model::linear_input_name(model::input_of(module.kind));
  nlohmann::ordered_json statistics;
  try {
    const Matrix& h = hessian_for(module.layer, input);
    const Matrix w = checkpoint_->load_linear_rows(module.layer, module.kind, item.row_begin, item.row_end);
    const PipelineResult result = run_pipeline(w, h, module_pipeline(config_, module));
    statistics = item_statistics(item, module, result, comm_.rank());
    store::ItemResult stored;
    stored.item_id = item_id;
    stored.row_begin = item.row_begin;
    stored.row_end = item.row_end;
    stored.codes = result.quantized.codes;
    stored.scales = result.quantized.scales;
    stored.zeros = result.quantized.zeros;
    stored.g_idx = result.quantized.g_idx;
    stored.dequant = result.quantized.dequant;
    stored.statistics = statistics;
    journal_->record(stored);
  } catch (const std::exception& error) {
    throw std::runtime_error(detail::concat("rank ", comm_.rank(), " layer ", module.layer, " module ",
                                            model::linear_name(module.kind), " rows ", item.row_begin,
                                            "..", item.row_end, ": ", error.what()));
  }
  return statistics;
}

void RunJob::on_item_finished(int64_t item_id, int rank, const nlohmann::ordered_json& statistics) {
  const std::lock_guard lock(progress_mutex_);
  ++finished_in_schedule_;
  const double elapsed = seconds_since(schedule_start_);
  const double eta = elapsed / static_cast<double>(finished_in_schedule_) *
                     static_cast<double>(scheduled_ - finished_in_schedule_);
  spdlog::info("{}  rank {}  ETA {}", format_item_line(statistics), rank, format_duration(eta));
  for (const auto& event : statistics.value("events", nlohmann::ordered_json::array())) {
    spdlog::warn("item {} ({}): {}", item_id, statistics.value("module", std::string()), event.get<std::string>());
  }
  if (statistics.value("rtn_fallback", false)) {
    fallback_modules_.push_back(statistics.value("module", std::string()));
    if (static_cast<int64_t>(fallback_modules_.size()) > config_.quantizer.max_fallbacks) {
      std::string list;
      for (const std::string& name : fallback_modules_) {
        list += (list.empty() ? "" : ", ") + name;
      }
      throw std::runtime_error(detail::concat(
          fallback_modules_.size(), " modules fell back to RTN, more than quantizer.max_fallbacks = ",
          config_.quantizer.max_fallbacks, ": ", list,
          ". Check the Hessians (magrq hessians inspect) or raise quantizer.max_fallbacks"));
    }
  }
}

void RunJob::quantize(const std::vector<int64_t>& items) {
  const auto start = Clock::now();
  {
    const std::lock_guard lock(progress_mutex_);
    finished_in_schedule_ = 0;
    scheduled_ = static_cast<int64_t>(items.size());
    schedule_start_ = start;
  }
  const dist::ScheduleTimes times = dist::run_schedule(
      comm_, items, [this](int64_t id) { return process_item(id); },
      [this](int64_t id, int rank, const nlohmann::ordered_json& s) { on_item_finished(id, rank, s); });
  times_.busy_seconds += times.busy_seconds;
  times_.wall_seconds += times.wall_seconds;
  times_.items += times.items;
  // Workers leave the schedule once every item is handed out; the barrier waits until
  // every item is also finished and durable.
  comm_.barrier();
  report_.phase_seconds["quantize"] += seconds_since(start);
}

void RunJob::quantize_independent() { quantize(pending_items(std::nullopt)); }

model::QuantizedModule RunJob::assemble_module(size_t module_index) const {
  const dist::ModuleSpec& spec = plan_.modules[module_index];
  model::QuantizedModule module;
  module.name = spec.name;
  module.bits = spec.settings.bits;
  module.group_size = spec.settings.group_size;
  const Index groups = spec.settings.group_size > 0
                           ? (spec.in_features + spec.settings.group_size - 1) / spec.settings.group_size
                           : 1;
  module.codes.resize(spec.out_features, spec.in_features);
  module.scales.resize(groups, spec.out_features);
  module.zeros.resize(groups, spec.out_features);
  for (const dist::WorkItem& item : plan_.items) {
    if (item.module != static_cast<int64_t>(module_index)) {
      continue;
    }
    const store::ItemResult result = journal_->load(item.id);
    const Index rows = item.row_end - item.row_begin;
    module.codes.middleRows(item.row_begin, rows) = result.codes;
    module.scales.middleCols(item.row_begin, rows) = result.scales;
    module.zeros.middleCols(item.row_begin, rows) = result.zeros;
    if (module.g_idx.size() == 0) {
      module.g_idx = result.g_idx;
    } else if (module.g_idx != result.g_idx) {
      throw InternalError(spec.name + ": row blocks disagree on g_idx");
    }
  }
  return module;
}

model::DecoderLayerWeights RunJob::quantized_layer(int64_t layer) const {
  model::DecoderLayerWeights weights = checkpoint_->load_layer(layer);
  for (size_t m = 0; m < plan_.modules.size(); ++m) {
    const dist::ModuleSpec& spec = plan_.modules[m];
    if (spec.layer == layer && !spec.settings.skip) {
      weights.weight(spec.kind) = model::dequantize_module(assemble_module(m));
    }
  }
  return weights;
}

void RunJob::run_sequential() {
  const int64_t layers = checkpoint_->config().num_hidden_layers;
  std::unique_ptr<store::HessianStoreWriter> writer;
  bool any_reused = false;
  if (comm_.is_coordinator()) {
    replace_mismatched_store_on_restart();
    if (std::filesystem::exists(store_path()) && config_.store.reuse) {
      const auto difference =
          store::HessianStoreReader(store_path()).header().fingerprint.describe_difference(store_fingerprint_);
      if (difference) {
        throw DataError("Hessian store " + store_path().string() + " does not match this run: " + *difference +
                        ". Rerun with --restart to replace it, or use another store.path");
      }
    }
    store::HessianStoreHeader header{store_fingerprint_, model::flatten_positions(windows_.positions),
                                     layers, config_.store.precision == "float32", store_layout()};
    if (!config_.store.reuse) {
      std::filesystem::remove_all(store_path());
    }
    writer = std::make_unique<store::HessianStoreWriter>(store_path(), header);
  }
  comm_.barrier();
  store_reader_ = std::make_unique<store::HessianStoreReader>(store_path());
  dist::WindowStates states(comm_, *checkpoint_, windows_.windows);
  for (int64_t layer = 0; layer < layers; ++layer) {
    const auto calibrate_start = Clock::now();
    const bool stored = comm_.any(comm_.is_coordinator() && store_reader_->has_layer(layer));
    if (!stored) {
      const auto hessians = states.run_layer(checkpoint_->load_layer(layer), true, false);
      write_layer_hessians(writer.get(), layer, hessians);
    } else {
      any_reused = true;
      if (comm_.is_coordinator()) {
        spdlog::info("calibrate: layer {:3d} reusing stored Hessians", layer);
      }
    }
    comm_.barrier();
    report_.phase_seconds["calibrate"] += seconds_since(calibrate_start);
    quantize(pending_items(layer));
    const auto forward_start = Clock::now();
    states.run_layer(quantized_layer(layer), false, true);
    report_.phase_seconds["forward"] += seconds_since(forward_start);
  }
  if (writer) {
    writer->commit();
  }
  report_.store_reused = any_reused;
}

void RunJob::export_outputs() {
  const auto start = Clock::now();
  if (comm_.is_coordinator()) {
    std::vector<model::QuantizedModule> packed;
    std::vector<std::pair<std::string, Matrix>> dequantized;
    model::GptqExportOptions options = export_options(config_);
    for (size_t m = 0; m < plan_.modules.size(); ++m) {
      const dist::ModuleSpec& spec = plan_.modules[m];
      if (spec.settings.skip) {
        options.unquantized_modules.push_back(spec.name);
        continue;
      }
      model::QuantizedModule module = assemble_module(m);
      dequantized.emplace_back(spec.name + ".weight", model::dequantize_module(module));
      if (spec.export_problem) {
        options.unquantized_modules.push_back(spec.name);
      } else {
        packed.push_back(std::move(module));
      }
    }
    const auto out = std::filesystem::path(config_.output.dir);
    const auto shard = static_cast<uint64_t>(config_.output.shard_size_gib * (1ull << 30));
    model::write_replaced_checkpoint(*checkpoint_, dequantized, out / "dequantized", shard);
    spdlog::info("export: wrote {}", (out / "dequantized").string());
    if (has_format(config_, "gptq")) {
      model::write_gptq_checkpoint(*checkpoint_, packed, options, out / "gptq");
      spdlog::info("export: wrote {} ({} packed modules, {} kept unquantized)", (out / "gptq").string(),
                   packed.size(), options.unquantized_modules.size());
      const model::VerifyReport verify = model::verify_gptq_checkpoint(out / "gptq", out / "dequantized");
      report_.set_verify(verify);
      if (!verify.problems.empty()) {
        throw DataError("verify: " + (out / "gptq").string() + ": " + verify.problems.front());
      }
      spdlog::info("verify: {} modules, {} weights unpacked and equal to the dequantized checkpoint",
                   verify.modules, verify.weights);
    }
    report_.unquantized_modules = options.unquantized_modules;
  }
  comm_.barrier();
  report_.phase_seconds["export"] = seconds_since(start);
}

void RunJob::evaluate() {
  const auto start = Clock::now();
  const auto out = std::filesystem::path(config_.output.dir);
  const model::Checkpoint quantized(out / "dequantized");
  const bool bos = tokenizer_->adds_bos_by_default();
  for (const std::string& source : config_.evaluation.sources) {
    model::WindowOptions options;
    options.seqlen = config_.evaluation.seqlen;
    options.max_windows = config_.evaluation.max_windows;
    const model::TokenWindows windows = model::make_windows(
        model::TextSpec::parse(source), [&](std::string_view text) { return tokenizer_->encode(text, bos); },
        options);
    std::optional<model::PerplexityResult> full;
    if (config_.evaluation.full_precision) {
      full = dist::distributed_perplexity(comm_, *checkpoint_, windows.windows);
    }
    const auto quantized_result = dist::distributed_perplexity(comm_, quantized, windows.windows);
    if (comm_.is_coordinator()) {
      report_.add_perplexity(source, windows.windows.size(), full, *quantized_result);
      spdlog::info("eval: {}  windows {}  fp {}  quantized {:.4f}", source, windows.windows.size(),
                   full ? fmt::format("{:.4f}", full->perplexity) : std::string("-"),
                   quantized_result->perplexity);
    }
  }
  if (!has_format(config_, "dequantized") && comm_.is_coordinator()) {
    std::filesystem::remove_all(out / "dequantized");
  }
  report_.phase_seconds["evaluate"] = seconds_since(start);
}

void RunJob::finish_report() {
  report_.gather_rank_times(comm_, times_);
  if (!comm_.is_coordinator()) {
    return;
  }
  report_.fallback_modules = fallback_modules_;
  ExperimentConfig copy = config_;
  report_.write(config_.output.dir, declare_experiment_schema(copy).resolved(), plan_, *journal_);
  report_.log_summary();
  // report.json and report.md hold the numbers already, so a failed plot costs only the
  // plots section of report.md, never the run.
  try {
    write_run_plots(config_.output.dir);
  } catch (const std::exception& error) {
    spdlog::warn("report: plots not written to {}: {}", config_.output.dir, error.what());
  }
}

// CPUs this process may run on (its affinity mask, which Slurm and the MPI launcher
// narrow to the allocation), or the machine's count when the mask cannot be read.
int usable_cpus() {
  cpu_set_t mask;
  if (sched_getaffinity(0, sizeof(mask), &mask) == 0) {
    return std::max(1, CPU_COUNT(&mask));
  }
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

// Returns the threads per rank: the configured count, else SLURM_CPUS_PER_TASK, else
// OMP_NUM_THREADS. Without any of them, the CPUs this process may use are shared among
// the ranks the launcher placed on the node, so that ranks do not oversubscribe them.
int threads_per_rank(const ExperimentConfig& config) {
  if (config.parallel.threads_per_rank > 0) {
    return config.parallel.threads_per_rank;
  }
  for (const char* name : {"SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS"}) {
    if (const char* value = std::getenv(name); value != nullptr && std::atoi(value) > 0) {
      return std::atoi(value);
    }
  }
  int local_ranks = 1;
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS_PER_NODE"}) {
    if (const char* value = std::getenv(name)) {
      local_ranks = std::max(1, std::atoi(value));
      break;
    }
  }
  return std::max(1, usable_cpus() / local_ranks);
}

int RunJob::execute() {
  const auto start = Clock::now();
  const int threads = threads_per_rank(config_);
  openblas_set_num_threads(threads);
  omp_set_num_threads(threads);

  if (comm_.is_coordinator()) {
    ExperimentConfig copy = config_;
    spdlog::info("experiment {}: {}", experiment_file_.string(), declare_experiment_schema(copy).resolved().dump());
    spdlog::info("parallel: {} ranks, {} threads per rank", comm_.size(), threads);
  }
  plan();
  if (flags_.dry_run) {
    return 0;
  }

  if (flags_.calibrate_only && sequential()) {
    throw ConfigError("calibration.mode sequential calibrates each layer on the outputs of the quantized "
                      "layers before it, so it runs inside magrq run; magrq calibrate needs mode independent");
  }
  sample_windows();
  store_fingerprint_ = store_fingerprint(config_);
  if (!flags_.calibrate_only) {
    std::filesystem::create_directories(config_.output.dir);
    open_journal();
  }

  if (sequential()) {
    run_sequential();
  } else {
    calibrate_independent();
    if (!flags_.calibrate_only) {
      quantize_independent();
    }
  }
  if (flags_.calibrate_only) {
    return 0;
  }

  export_outputs();
  evaluate();
  report_.phase_seconds["total"] = seconds_since(start);
  finish_report();
  return 0;
}

}  // namespace

int run_experiment(const dist::Comm& comm, const std::filesystem::path& experiment_file,
                   const RunFlags& flags) {
  RunJob job(comm, load_experiment(experiment_file), experiment_file, flags);
  return job.execute();
}

}  // namespace magrq::app
