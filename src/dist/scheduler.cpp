#include "dist/scheduler.hpp"

#include <chrono>
#include <cstring>
#include <exception>
#include <string>
#include <thread>

#include <spdlog/spdlog.h>

#include "core/error.hpp"
#include "core/timing.hpp"

namespace magrq::dist {

namespace {

constexpr int kRequestTag = 101;  // worker -> coordinator: finished item id (or -1) + statistics
constexpr int kAssignTag = 102;   // coordinator -> worker: next item id, or -1 when done
constexpr int64_t kNoItem = -1;

// A report: 8 bytes of item id, then the statistics as JSON text.
std::string encode_report(int64_t item, const nlohmann::ordered_json& statistics) {
  std::string message(sizeof(int64_t), '\0');
  std::memcpy(message.data(), &item, sizeof(int64_t));
  if (item != kNoItem) {
    message += statistics.dump();
  }
  return message;
}

void coordinate(MPI_Comm comm, int workers, const std::vector<int64_t>& order,
                const FinishedCallback& on_finished) {
  size_t next = 0;
  int active = workers;
  while (active > 0) {
    MPI_Status status;
    MPI_Probe(MPI_ANY_SOURCE, kRequestTag, comm, &status);
    int size = 0;
    MPI_Get_count(&status, MPI_CHAR, &size);
    std::string message(static_cast<size_t>(size), '\0');
    MPI_Recv(message.data(), size, MPI_CHAR, status.MPI_SOURCE, kRequestTag, comm, MPI_STATUS_IGNORE);
    int64_t finished = kNoItem;
    std::memcpy(&finished, message.data(), sizeof(int64_t));
    if (finished != kNoItem && on_finished) {
      on_finished(finished, status.MPI_SOURCE,
                  nlohmann::ordered_json::parse(message.substr(sizeof(int64_t))));
    }
    const int64_t assigned = next < order.size() ? order[next++] : kNoItem;
    MPI_Send(&assigned, 1, MPI_INT64_T, status.MPI_SOURCE, kAssignTag, comm);
    if (assigned == kNoItem) {
      --active;
    }
  }
}

ScheduleTimes work(MPI_Comm comm, int coordinator, const ItemProcessor& process) {
  ScheduleTimes times;
  const auto start = std::chrono::steady_clock::now();
  std::string report = encode_report(kNoItem, {});
  while (true) {
    MPI_Send(report.data(), static_cast<int>(report.size()), MPI_CHAR, coordinator, kRequestTag, comm);
    int64_t item = kNoItem;
    MPI_Recv(&item, 1, MPI_INT64_T, coordinator, kAssignTag, comm, MPI_STATUS_IGNORE);
    if (item == kNoItem) {
      break;
    }
    const auto item_start = std::chrono::steady_clock::now();
    const nlohmann::ordered_json statistics = process(item);
    times.busy_seconds += seconds_since(item_start);
    ++times.items;
    report = encode_report(item, statistics);
  }
  times.wall_seconds = seconds_since(start);
  return times;
}

}  // namespace

bool mpi_threads_available() {
  int provided = MPI_THREAD_SINGLE;
  MPI_Query_thread(&provided);
  return provided >= MPI_THREAD_MULTIPLE;
}

ScheduleTimes run_schedule(const Comm& comm, const std::vector<int64_t>& order,
                           const ItemProcessor& process, const FinishedCallback& on_finished) {
  // A private communicator keeps the protocol's messages apart from any other traffic.
  MPI_Comm private_comm = MPI_COMM_NULL;
  MPI_Comm_dup(comm.handle(), &private_comm);
  const bool threads = mpi_threads_available();
  const bool rank0_works = threads || comm.size() == 1;
  const int workers = rank0_works ? comm.size() : comm.size() - 1;
  ScheduleTimes times;

  if (comm.rank() != 0) {
    times = work(private_comm, 0, process);
  } else if (!rank0_works) {
    const auto start = std::chrono::steady_clock::now();
    try {
      coordinate(private_comm, workers, order, on_finished);
    } catch (const std::exception& error) {
      spdlog::critical("coordinator: {}", error.what());
      MPI_Abort(comm.handle(), 1);
    }
    times.wall_seconds = seconds_since(start);
  } else if (comm.size() == 1 && !threads) {
    // One rank without thread support: process the items in order, in this thread.
    const auto start = std::chrono::steady_clock::now();
    for (const int64_t item : order) {
      const auto item_start = std::chrono::steady_clock::now();
      const auto statistics = process(item);
      times.busy_seconds += seconds_since(item_start);
      ++times.items;
      if (on_finished) {
        on_finished(item, 0, statistics);
      }
    }
    times.wall_seconds = seconds_since(start);
  } else {
    std::thread coordinator([&] {
      try {
        coordinate(private_comm, workers, order, on_finished);
      } catch (const std::exception& error) {
        // Workers are waiting for replies that will never come: end the whole job.
        spdlog::critical("coordinator: {}", error.what());
        MPI_Abort(comm.handle(), 1);
      }
    });
    try {
      times = work(private_comm, 0, process);
    } catch (...) {
      // The job is about to abort; the coordinator thread cannot be joined safely.
      coordinator.detach();
      throw;
    }
    coordinator.join();
  }
  MPI_Comm_free(&private_comm);
  return times;
}

}  // namespace magrq::dist
