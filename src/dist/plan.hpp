// The plan of a quantization run: every module with its settings and export support,
// every work item (a block of a module's output channels) with its estimated memory and
// cost, built and checked before any heavy work starts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/types.hpp"
#include "model/llama_config.hpp"

namespace magrq::dist {

// Quantizer settings of one module after overrides are applied.
struct ModuleSettings {
  bool skip = false;  // left unquantized
  std::string method = "gptq";
  int bits = 4;
  Index group_size = -1;
  bool magr = true;
};

struct ModuleSpec {
  Index layer = 0;
  model::LinearKind kind = model::LinearKind::q_proj;
  std::string name;  // full tensor prefix, e.g. model.layers.3.self_attn.q_proj
  Index out_features = 0;
  Index in_features = 0;
  ModuleSettings settings;
  // Why the GPTQ layout cannot hold this module, if it cannot (see gptq_layout.hpp).
  std::optional<std::string> export_problem;
};

// One unit of scheduled work: rows [row_begin, row_end) of one module. MagR, GPTQ and the
// refinement treat each output row independently given H, so splitting rows changes no
// result.
struct WorkItem {
  int64_t id = 0;         // position in the plan's fixed order (layer, module, rows)
  int64_t module = 0;     // index into Plan::modules
  Index row_begin = 0;
  Index row_end = 0;
  uint64_t memory_bytes = 0;  // estimated peak bytes of the worker running it
  double cost = 0.0;          // estimated floating-point operations
};

struct PlanOptions {
  Index block_rows = 0;            // rows per item; 0 = whole module
  uint64_t memory_budget_bytes = 0;  // per rank; 0 = unchecked
  bool magr = true;
  int magr_iterations = 150;
  // Candidates of the MagR alpha search (no MagR not counted); 0 for one fixed alpha.
  int magr_search_candidates = 0;
  int cd_iterations = 0;
  // Calibration windows and tokens per window, and the number of ranks, for the
  // calibration memory estimate. calibration_windows = 0 leaves calibration out.
  int64_t calibration_windows = 0;
  int64_t calibration_seqlen = 0;
  int ranks = 1;
  // Bytes per weight element in the checkpoint files (2 for BF16 and F16, 4 for F32).
  // The files are memory-mapped, so the pages of the weights a rank reads count in its
  // resident memory.
  int checkpoint_element_bytes = 2;
};

// Estimated peak resident bytes of calibrating one decoder layer (the largest), per rank.
struct CalibrationMemory {
  uint64_t coordinator_bytes = 0;  // rank 0: the float64 sums, its own windows' X^T X, one received X^T X
  uint64_t worker_bytes = 0;       // ranks 1..N-1: their windows' X^T X
};

struct Plan {
  std::vector<ModuleSpec> modules;
  std::vector<WorkItem> items;  // in id order
  std::vector<int> tensor_parallel_degrees;  // of {1, 2, 4, 8} that every packed module supports
  CalibrationMemory calibration;  // zero when PlanOptions::calibration_windows is 0
  int ranks = 1;
};

// Lists the linear modules of every layer in forward order with their shapes.
std::vector<ModuleSpec> list_modules(const model::LlamaConfig& config);

// Cuts modules into items and estimates them. Skipped modules get no items.
Plan make_plan(std::vector<ModuleSpec> modules, const PlanOptions& options);

// Resident bytes of a magrq rank before any model data: code, MPI and OpenBLAS buffers.
// A run on the small synthetic model peaks at about 40 MiB (VmHWM, x86-64 Debian 12,
// Open MPI 4.1.4), rounded up here.
inline constexpr uint64_t kProcessBaselineBytes = uint64_t{64} << 20;

// Estimated peak resident bytes of a rank quantizing `rows` rows of a module with
// `in_features` inputs: the largest of the phases of an item (see plan.cpp), plus the
// process baseline and the mapped pages of the rows read. The float64 retry of a failed
// float32 GPTQ factorization needs 8 * in_features^2 bytes more and is not included.
uint64_t estimate_item_bytes(Index rows, Index in_features, const ModuleSettings& settings,
                             bool magr, int checkpoint_element_bytes);

// Estimated peak resident bytes of calibration on rank 0 and on the other ranks, for
// the decoder layer of `modules` that needs the most, in the layer-streamed calibration
// of dist/calibrate.hpp. Zero when options.calibration_windows is 0.
CalibrationMemory estimate_calibration_bytes(const std::vector<ModuleSpec>& modules,
                                             const PlanOptions& options);

// Estimated peak resident bytes of rank r over calibration and quantization: the larger
// of its calibration estimate and the largest item estimate.
uint64_t estimate_rank_bytes(const Plan& plan, int rank);

// Throws ConfigError naming the largest item over budget, its module and its estimate,
// or naming calibration and its rank when calibration alone exceeds the budget.
void check_memory_budget(const Plan& plan, uint64_t budget_bytes);

// Item ids in the order the coordinator hands them out: largest cost first, ties by id.
std::vector<int64_t> schedule_order(const Plan& plan, const std::vector<int64_t>& item_ids);

// A fixed-width text table of the plan for --dry-run and the log.
std::string format_plan(const Plan& plan);

}  // namespace magrq::dist
