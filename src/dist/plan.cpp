#include "dist/plan.hpp"

#include <algorithm>
#include <cstdio>

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
  double cost = 2.0 * r * in * in;  // GPTQ updates (or the output error for RTN)
  if (module.settings.method == "gptq") {
    cost += in * in * in / 3.0;  // Cholesky and inverse of H
  }
  if (options.magr && module.settings.magr) {
    cost += 2.0 * r * in * in * options.magr_iterations;
  }
  cost += 2.0 * r * in * in * options.cd_iterations;
  return cost;
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

uint64_t estimate_item_bytes(Index rows, Index in_features) {
  const uint64_t in = static_cast<uint64_t>(in_features);
  const uint64_t r = static_cast<uint64_t>(rows);
  const uint64_t hessian = in * in * (8 + 4);     // float64 from the store, float32 in use
  const uint64_t factor = in * in * (4 + 8);      // float32 factor and its float64 retry
  const uint64_t row_blocks = 10 * r * in * 4;    // weights, iterates, gradient, codes, dequant
  return hessian + factor + row_blocks;
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
      item.memory_bytes = estimate_item_bytes(item.row_end - begin, module.in_features);
      item.cost = item_cost(module, item.row_end - begin, options);
      plan.items.push_back(item);
    }
  }
  plan.tensor_parallel_degrees = supported_degrees(plan.modules);
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
  text += "tensor-parallel degrees the packed output supports:";
  for (const int degree : plan.tensor_parallel_degrees) {
    text += " " + std::to_string(degree);
  }
  return text + "\n";
}

}  // namespace magrq::dist
