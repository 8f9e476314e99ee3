// Dynamic scheduling of work items over MPI ranks.
//
// Rank 0 runs a coordinator on a thread of its own (MPI_THREAD_MULTIPLE), so every rank,
// rank 0 included, runs the same worker loop: ask the coordinator for an item, process it,
// make its result durable, report it. The coordinator hands items out in the order given
// (largest first), counts an item only when its worker reports it finished, and calls
// on_finished for each report on rank 0. If the MPI library lacks thread support, rank 0
// only coordinates when there is more than one rank.
//
// A worker's exception is logged by the caller's catch point, which aborts the job, so
// the coordinator never waits for a dead worker.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <vector>

#include "dist/comm.hpp"

namespace magrq::dist {

// Processes one item, makes it durable, and returns its statistics (sent to rank 0).
using ItemProcessor = std::function<nlohmann::ordered_json(int64_t item_id)>;
// Called on rank 0, in the coordinator thread, for every finished item.
using FinishedCallback = std::function<void(int64_t item_id, int rank, const nlohmann::ordered_json& statistics)>;

struct ScheduleTimes {
  double busy_seconds = 0.0;   // this rank's time inside the processor
  double wall_seconds = 0.0;   // this rank's time in run_schedule
  int64_t items = 0;           // items this rank processed
};

// Runs every item of `order` (the same list on every rank) to completion. A collective:
// all ranks of comm must call it. Returns this rank's times.
ScheduleTimes run_schedule(const Comm& comm, const std::vector<int64_t>& order,
                           const ItemProcessor& process, const FinishedCallback& on_finished);

// Whether MPI was initialised with MPI_THREAD_MULTIPLE.
bool mpi_threads_available();

}  // namespace magrq::dist
