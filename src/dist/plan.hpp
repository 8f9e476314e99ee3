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
  int cd_iterations = 0;
};

struct Plan {
  std::vector<ModuleSpec> modules;
  std::vector<WorkItem> items;  // in id order
  std::vector<int> tensor_parallel_degrees;  // of {1, 2, 4, 8} that every packed module supports
};

// Lists the linear modules of every layer in forward order with their shapes.
std::vector<ModuleSpec> list_modules(const model::LlamaConfig& config);

// Cuts modules into items and estimates them. Skipped modules get no items.
Plan make_plan(std::vector<ModuleSpec> modules, const PlanOptions& options);

// Estimated peak bytes of a worker quantizing `rows` rows of a module: the Hessian as read
// from the store (float64) and as used (float32), the GPTQ factor and its float64 retry,
// and about ten row-block matrices (weights, MagR iterates and gradient, codes, dequantized).
uint64_t estimate_item_bytes(Index rows, Index in_features);

// Throws ConfigError naming the largest item over budget, its module and its estimate.
void check_memory_budget(const Plan& plan, uint64_t budget_bytes);

// Item ids in the order the coordinator hands them out: largest cost first, ties by id.
std::vector<int64_t> schedule_order(const Plan& plan, const std::vector<int64_t>& item_ids);

// A fixed-width text table of the plan for --dry-run and the log.
std::string format_plan(const Plan& plan);

}  // namespace magrq::dist
