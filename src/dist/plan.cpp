#include "dist/plan.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

#include "core/error.hpp"
#include "model/gptq_layout.hpp"

namespace magrq::dist {

namespace {

bool is_row_parallel(model::LinearKind kind) {
  return kind == model::LinearKind::o_proj || kind == model::LinearKind::down_proj;
}

double item_cost(const ModuleSpec& module, Index rows, const PlanOptions& options) {
  const double in = static_cast<double>(module.in_features);
  const double r = static_cast<double>(rows);
  const double gemm = 2.0 * r * in * in;  // one rows x in times in x in product
  double quantize = gemm;                 // GPTQ updates (or the output error for RTN)
  if (module.settings.method == "gptq") {
    quantize += in * in * in / 3.0;  // Cholesky and inverse of H
  }
  quantize += gemm * options.cd_iterations;
  if (!(options.magr && module.settings.magr)) {
    return quantize;
  }
  const int k = options.magr_search_candidates;
  if (k == 0) {
    return quantize + gemm * options.magr_iterations;
  }
  // The alpha search: 1.5 times the iterations over its path (one solve's count for a
  // single candidate), a GEMM per warm start and one for the zeroing alphas, and per
  // candidate, no MagR included, a quantization and a row-error GEMM.
  const int iterations = k == 1 ? options.magr_iterations : options.magr_iterations + options.magr_iterations / 2;
  return gemm * (iterations + k) + (k + 1) * (quantize + gemm);
}

std::vector<int> supported_degrees(const std::vector<ModuleSpec>& modules) {
  std::vector<int> degrees;
  for (const int degree : {1, 2, 4, 8}) {
    const bool ok = std::all_of(modules.begin(), modules.end(), [&](const ModuleSpec& m) {
      if (m.settings.skip || m.export_problem) {
        return true;
      }
      return model::gptq_tensor_parallel_ok(m.out_features, m.in_features, m.settings.bits,
                                            m.settings.group_size, is_row_parallel(m.kind), degree);
    });
    if (ok) {
      degrees.push_back(degree);
    }
  }
  return degrees;
}

std::string format_bytes(uint64_t bytes) {
  char text[32];
  const double mib = static_cast<double>(bytes) / (1024.0 * 1024.0);
  if (mib >= 1024.0) {
    std::snprintf(text, sizeof(text), "%.2f GiB", mib / 1024.0);
  } else {
    std::snprintf(text, sizeof(text), "%.1f MiB", mib);
  }
  return text;
}

// Two lines: the largest item and the calibration estimates, and the peak per rank.
std::string format_memory_summary(const Plan& plan) {
  const WorkItem* largest = nullptr;
  for (const WorkItem& item : plan.items) {
    if (!largest || item.memory_bytes > largest->memory_bytes) {
      largest = &item;
    }
  }
  std::string text = "memory per rank (estimate):";
  if (largest) {
    text += " largest item " + std::to_string(largest->id) + " (" +
            plan.modules[static_cast<size_t>(largest->module)].name + ") " + format_bytes(largest->memory_bytes) + ";";
  }
  if (plan.calibration.coordinator_bytes > 0) {
    text += " calibration rank 0 " + format_bytes(plan.calibration.coordinator_bytes);
    if (plan.ranks > 1) {
      text += ", ranks 1.." + std::to_string(plan.ranks - 1) + " " + format_bytes(plan.calibration.worker_bytes);
    }
    text += ";";
  } else {
    text += " calibration not estimated;";
  }
  text += " peak rank 0 " + format_bytes(estimate_rank_bytes(plan, 0));
  if (plan.ranks > 1) {
    text += ", other ranks " + format_bytes(estimate_rank_bytes(plan, 1));
  }
  return text + "\n";
}

}  // namespace

std::vector<ModuleSpec> list_modules(const model::LlamaConfig& config) {
  std::vector<ModuleSpec> modules;
  for (Index layer = 0; layer < config.num_hidden_layers; ++layer) {
    for (const model::LinearKind kind : model::kAllLinearKinds) {
      const model::LinearShape shape = model::linear_shape(config, kind);
      ModuleSpec module;
      module.layer = layer;
      module.kind = kind;
      module.name = model::linear_module_name(layer, kind);
      module.out_features = shape.out_features;
      module.in_features = shape.in_features;
      modules.push_back(module);
    }
  }
  return modules;
}

// The item's peak is the largest of the moments where most memory is alive. With
// n = in_features, r = rows and float32 matrices unless stated:
// - loading H: the float64 sum read from the store and its float32 copy, 12 n^2;
// - MagR: H, the input rows, the solver's iterates, gradients, start point and result,
//   4 n^2 + 8 x 4 r n;
// - GPTQ's factorization: H, GPTQ's working copy, the reversed copy being factored, its
//   triangular inverse and the factor U, 20 n^2, next to the input rows, the MagR
//   result, the pipeline's copy of it and GPTQ's working weight, 4 x 4 r n;
// - the pipeline's output error: H and its float64 cast, 12 n^2, next to the input rows,
//   the two MagR copies, the dequantized weight, the int32 codes, the zero matrix that
//   the reference energy compares against (6 x 4 r n) and the float64 difference and its
//   product with H (2 x 8 r n).
// Without MagR the two MagR copies (2 x 4 r n) are absent.
uint64_t estimate_item_bytes(Index rows, Index in_features, const ModuleSettings& settings, bool magr,
                             int checkpoint_element_bytes) {
  const uint64_t n = static_cast<uint64_t>(in_features);
  const uint64_t r = static_cast<uint64_t>(rows);
  const uint64_t square = n * n;
  const uint64_t row_block = r * n * 4;
  const bool runs_magr = magr && settings.magr;
  const uint64_t magr_copies = runs_magr ? 2 * row_block : 0;

  uint64_t peak = 12 * square;
  if (runs_magr) {
    peak = std::max(peak, 4 * square + 8 * row_block);
  }
  if (settings.method == "gptq") {
    peak = std::max(peak, 20 * square + 2 * row_block + magr_copies);
  }
  peak = std::max(peak, 12 * square + 8 * row_block + magr_copies);
  const uint64_t mapped_rows = r * n * static_cast<uint64_t>(checkpoint_element_bytes);
  return kProcessBaselineBytes + mapped_rows + peak;
}

namespace {

// Widths of a layer's four linear inputs and its weight count, read off its modules.
struct LayerShape {
  uint64_t input_width[4] = {0, 0, 0, 0};  // attn_in, attn_out, mlp_in, mlp_out
  uint64_t hidden = 0;
  uint64_t out_sum = 0;  // sum of out_features: the widths of the linear outputs
  uint64_t weights = 0;
};

std::map<Index, LayerShape> layer_shapes(const std::vector<ModuleSpec>& modules) {
  std::map<Index, LayerShape> layers;
  for (const ModuleSpec& module : modules) {
    LayerShape& layer = layers[module.layer];
    const auto in = static_cast<uint64_t>(module.in_features);
    const auto out = static_cast<uint64_t>(module.out_features);
    layer.input_width[static_cast<int>(model::input_of(module.kind))] = in;
    if (module.kind == model::LinearKind::q_proj) {
      layer.hidden = in;
    }
    layer.out_sum += out;
    layer.weights += in * out;
  }
  return layers;
}

// Windows owned by `rank` when window w belongs to rank w mod ranks.
uint64_t owned_windows(int64_t windows, int ranks, int rank) {
  return windows > rank ? static_cast<uint64_t>((windows - 1 - rank) / ranks + 1) : 0;
}

}  // namespace

// Per layer and rank (widths w of the four inputs, float64 X^T X of w^2 x 8 bytes each):
// - the layer's weights as float32 copies plus their mapped file pages;
// - the hidden states of the rank's windows, seqlen x hidden float32 each;
// - the forward pass of one window: about two float32 copies of every linear output and
//   of four hidden-width vectors per token, and the float64 copy of one input for X^T X;
// - the four X^T X of the rank's latest window (G = sum of 8 w^2), kept between
//   windows, and from the second owned window on one more X^T X of the widest input
//   (G_max), because a new window's product is computed before the old one is freed;
// - on rank 0 also the four float64 sums (G) and the buffer of one X^T X received
//   from another rank (G_max).
CalibrationMemory estimate_calibration_bytes(const std::vector<ModuleSpec>& modules,
                                             const PlanOptions& options) {
  CalibrationMemory memory;
  if (options.calibration_windows <= 0) {
    return memory;
  }
  const int ranks = std::max(1, options.ranks);
  const auto seqlen = static_cast<uint64_t>(std::max<int64_t>(0, options.calibration_seqlen));
  const uint64_t owned_coordinator = owned_windows(options.calibration_windows, ranks, 0);
  const uint64_t owned_worker = ranks > 1 ? owned_windows(options.calibration_windows, ranks, 1) : 0;
  for (const auto& [index, layer] : layer_shapes(modules)) {
    uint64_t gram_sum = 0;
    uint64_t gram_max = 0;
    uint64_t widest = 0;
    for (const uint64_t width : layer.input_width) {
      gram_sum += 8 * width * width;
      gram_max = std::max(gram_max, 8 * width * width);
      widest = std::max(widest, width);
    }
    const uint64_t weights =
        layer.weights * (4 + static_cast<uint64_t>(options.checkpoint_element_bytes));
    const uint64_t forward = 2 * seqlen * (layer.out_sum + 4 * layer.hidden) * 4 + seqlen * widest * 8;
    const auto rank_bytes = [&](uint64_t owned) {
      uint64_t bytes = kProcessBaselineBytes + weights + forward + owned * seqlen * layer.hidden * 4;
      bytes += owned > 0 ? gram_sum : 0;
      bytes += owned > 1 ? gram_max : 0;
      return bytes;
    };
    uint64_t coordinator = rank_bytes(owned_coordinator) + gram_sum;
    if (ranks > 1 && owned_coordinator <= 1) {
      coordinator += gram_max;  // the receive buffer; with 2+ own windows rank_bytes counted it
    }
    memory.coordinator_bytes = std::max(memory.coordinator_bytes, coordinator);
    if (ranks > 1) {
      memory.worker_bytes = std::max(memory.worker_bytes, rank_bytes(owned_worker));
    }
  }
  return memory;
}

uint64_t estimate_rank_bytes(const Plan& plan, int rank) {
  uint64_t peak = rank == 0 ? plan.calibration.coordinator_bytes : plan.calibration.worker_bytes;
  for (const WorkItem& item : plan.items) {
    peak = std::max(peak, item.memory_bytes);
  }
  return peak;
}

Plan make_plan(std::vector<ModuleSpec> modules, const PlanOptions& options) {
  if (options.block_rows < 0) {
    throw ConfigError(detail::concat("invalid parallel.block_rows ", options.block_rows,
                                     ": expected 0 (whole modules) or a positive row count"));
  }
  Plan plan;
  for (ModuleSpec& module : modules) {
    module.export_problem = model::gptq_layout_problem(module.out_features, module.in_features,
                                                       module.settings.bits,
                                                       module.settings.group_size);
  }
  plan.modules = std::move(modules);
  for (size_t m = 0; m < plan.modules.size(); ++m) {
    const ModuleSpec& module = plan.modules[m];
    if (module.settings.skip) {
      continue;
    }
    const Index block = options.block_rows > 0 ? options.block_rows : module.out_features;
    for (Index begin = 0; begin < module.out_features; begin += block) {
      WorkItem item;
      item.id = static_cast<int64_t>(plan.items.size());
      item.module = static_cast<int64_t>(m);
      item.row_begin = begin;
      item.row_end = std::min(module.out_features, begin + block);
      item.memory_bytes = estimate_item_bytes(item.row_end - begin, module.in_features, module.settings,
                                              options.magr, options.checkpoint_element_bytes);
      item.cost = item_cost(module, item.row_end - begin, options);
      plan.items.push_back(item);
    }
  }
  plan.tensor_parallel_degrees = supported_degrees(plan.modules);
  plan.calibration = estimate_calibration_bytes(plan.modules, options);
  plan.ranks = std::max(1, options.ranks);
  return plan;
}

void check_memory_budget(const Plan& plan, uint64_t budget_bytes) {
  if (budget_bytes == 0) {
    return;
  }
  const WorkItem* largest = nullptr;
  for (const WorkItem& item : plan.items) {
    if (item.memory_bytes > budget_bytes &&
        (!largest || item.memory_bytes > largest->memory_bytes)) {
      largest = &item;
    }
  }
  if (largest) {
    const ModuleSpec& module = plan.modules[static_cast<size_t>(largest->module)];
    throw ConfigError(detail::concat(
        "plan exceeds the memory budget: item ", largest->id, " (", module.name, " rows ",
        largest->row_begin, "..", largest->row_end, ", in_features ", module.in_features,
        ") needs an estimated ", format_bytes(largest->memory_bytes), " but parallel.memory_budget_gib allows ",
        format_bytes(budget_bytes), " per rank; raise the budget or use more memory per rank"));
  }
  const CalibrationMemory& calibration = plan.calibration;
  if (calibration.coordinator_bytes > budget_bytes || calibration.worker_bytes > budget_bytes) {
    const bool coordinator = calibration.coordinator_bytes >= calibration.worker_bytes;
    throw ConfigError(detail::concat(
        "plan exceeds the memory budget: calibration needs an estimated ",
        format_bytes(coordinator ? calibration.coordinator_bytes : calibration.worker_bytes), " on ",
        coordinator ? "rank 0 (the float64 X^T X sums of a layer, its own windows' X^T X and one received)"
                    : "ranks 1 and up (their windows' float64 X^T X of a layer)",
        " but parallel.memory_budget_gib allows ", format_bytes(budget_bytes),
        " per rank; raise the budget or use more memory per rank"));
  }
}

std::vector<int64_t> schedule_order(const Plan& plan, const std::vector<int64_t>& item_ids) {
  std::vector<int64_t> order = item_ids;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    const double cost_a = plan.items[static_cast<size_t>(a)].cost;
    const double cost_b = plan.items[static_cast<size_t>(b)].cost;
    if (cost_a != cost_b) {
      return cost_a > cost_b;
    }
    return a < b;
  });
  return order;
}

std::string format_plan(const Plan& plan) {
  std::string text;
  char line[256];
  std::snprintf(line, sizeof(line), "%6s  %-40s %11s %6s %6s %5s %6s %12s %10s  %s\n", "item",
                "module", "rows", "in", "method", "bits", "group", "memory", "GFLOP", "export");
  text += line;
  for (const WorkItem& item : plan.items) {
    const ModuleSpec& m = plan.modules[static_cast<size_t>(item.module)];
    char rows[32];
    std::snprintf(rows, sizeof(rows), "%lld..%lld", static_cast<long long>(item.row_begin),
                  static_cast<long long>(item.row_end));
    std::snprintf(line, sizeof(line), "%6lld  %-40s %11s %6lld %6s %5d %6lld %12s %10.3f  %s\n",
                  static_cast<long long>(item.id), m.name.c_str(), rows,
                  static_cast<long long>(m.in_features), m.settings.method.c_str(), m.settings.bits,
                  static_cast<long long>(m.settings.group_size), format_bytes(item.memory_bytes).c_str(),
                  item.cost / 1e9, m.export_problem ? "not packable" : "gptq");
    text += line;
  }
  for (const ModuleSpec& m : plan.modules) {
    if (m.settings.skip) {
      text += "skipped: " + m.name + (m.export_problem ? " (not packable: " + *m.export_problem + ")" : "") + "\n";
    } else if (m.export_problem) {
      text += "not packable: " + m.name + ": " + *m.export_problem + "\n";
    }
  }
  text += format_memory_summary(plan);
  text += "tensor-parallel degrees the packed output supports:";
  for (const int degree : plan.tensor_parallel_degrees) {
    text += " " + std::to_string(degree);
  }
  return text + "\n";
}

}  // namespace magrq::dist
