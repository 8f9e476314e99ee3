// A thin owner of an MPI communicator, passed explicitly to everything that talks
// over MPI (never MPI_COMM_WORLD hard-wired below the app layer).
#pragma once

#include <mpi.h>

#include <span>
#include <string>

namespace magrq::dist {

class Comm {
 public:
  explicit Comm(MPI_Comm handle);

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_coordinator() const { return rank_ == 0; }
  MPI_Comm handle() const { return handle_; }

  // Ends every rank of the job with the given exit code. Used by the one catch point
  // per rank so that an error on any rank never leaves the others waiting.
  [[noreturn]] void abort(int exit_code) const;

  // Point-to-point transfers of any length: messages are cut into pieces of at most 2^30
  // elements because MPI counts are int.
  void send(std::span<const double> data, int destination, int tag) const;
  void receive(std::span<double> data, int source, int tag) const;
  void send(std::span<const float> data, int destination, int tag) const;
  void receive(std::span<float> data, int source, int tag) const;
  // Collectives: every rank of the communicator must call them in the same order.
  void barrier() const;
  void broadcast(std::string& text, int root) const;
  void broadcast(std::span<double> data, int root) const;
  // Logical or of a flag over all ranks.
  bool any(bool flag) const;

 private:
  MPI_Comm handle_;
  int rank_ = 0;
  int size_ = 1;
};

// Initialises MPI for the lifetime of the object and finalises it on destruction.
class MpiSession {
 public:
  MpiSession();
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
};

}  // namespace magrq::dist
