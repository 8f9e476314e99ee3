// Results of a run as data: report.json (machine-readable) and report.md (tables) in the
// output folder, plus the summary logged at the end.
#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/pipeline.hpp"
#include "dist/comm.hpp"
#include "dist/plan.hpp"
#include "dist/scheduler.hpp"
#include "model/gptq_checkpoint.hpp"
#include "model/perplexity.hpp"
#include "store/hessian_store.hpp"
#include "store/journal.hpp"

namespace magrq::app {

// The statistics of one finished item, as stored in the journal and sent to rank 0.
nlohmann::ordered_json item_statistics(const dist::WorkItem& item, const dist::ModuleSpec& module,
                                       const PipelineResult& result, int rank);

// One aligned log line for a finished item.
std::string format_item_line(const nlohmann::ordered_json& statistics);

std::vector<std::string> split_lines(const std::string& text);

class RunReport {
 public:
  std::map<std::string, double> phase_seconds;
  bool store_reused = false;
  std::vector<std::string> unquantized_modules;
  std::vector<std::string> fallback_modules;

  void add_hessian(int64_t layer, const std::string& input, const store::HessianStatistics& statistics);
  void set_verify(const model::VerifyReport& verify);
  void add_perplexity(const std::string& source, size_t windows,
                      const std::optional<model::PerplexityResult>& full_precision,
                      const model::PerplexityResult& quantized);
  // A collective: gathers every rank's schedule times to rank 0.
  void gather_rank_times(const dist::Comm& comm, const dist::ScheduleTimes& times);
  // Writes report.json and report.md (rank 0), with every item's statistics read from the
  // journal, so a resumed run reports all items.
  void write(const std::filesystem::path& dir, const nlohmann::ordered_json& configuration,
             const dist::Plan& plan, const store::Journal& journal);
  void log_summary() const;

 private:
  nlohmann::ordered_json hessians_ = nlohmann::ordered_json::array();
  nlohmann::ordered_json verify_ = nullptr;
  nlohmann::ordered_json perplexity_ = nlohmann::ordered_json::array();
  std::vector<double> busy_seconds_;   // per rank
  std::vector<double> items_per_rank_;
  nlohmann::ordered_json items_ = nlohmann::ordered_json::array();
  nlohmann::ordered_json alpha_search_ = nullptr;  // summarize_alpha_search(items_)
};

}  // namespace magrq::app
