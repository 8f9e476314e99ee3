#include "dist/comm.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>

namespace magrq::dist {

Comm::Comm(MPI_Comm handle) : handle_(handle) {
  MPI_Comm_rank(handle_, &rank_);
  MPI_Comm_size(handle_, &size_);
}

void Comm::abort(int exit_code) const {
  MPI_Abort(handle_, exit_code);
  std::abort();  // MPI_Abort does not return; this keeps [[noreturn]] honest.
}

namespace {

constexpr size_t kMaxPiece = size_t{1} << 30;

template <typename T>
void send_pieces(MPI_Comm comm, std::span<const T> data, MPI_Datatype type, int destination,
                 int tag) {
  for (size_t offset = 0; offset < data.size() || offset == 0; offset += kMaxPiece) {
    const size_t count = std::min(kMaxPiece, data.size() - offset);
    MPI_Send(data.data() + offset, static_cast<int>(count), type, destination, tag, comm);
    if (data.empty()) {
      break;
    }
  }
}

template <typename T>
void receive_pieces(MPI_Comm comm, std::span<T> data, MPI_Datatype type, int source, int tag) {
  for (size_t offset = 0; offset < data.size() || offset == 0; offset += kMaxPiece) {
    const size_t count = std::min(kMaxPiece, data.size() - offset);
    MPI_Recv(data.data() + offset, static_cast<int>(count), type, source, tag, comm,
             MPI_STATUS_IGNORE);
    if (data.empty()) {
      break;
    }
  }
}

}  // namespace

void Comm::send(std::span<const double> data, int destination, int tag) const {
  send_pieces(handle_, data, MPI_DOUBLE, destination, tag);
}

void Comm::receive(std::span<double> data, int source, int tag) const {
  receive_pieces(handle_, data, MPI_DOUBLE, source, tag);
}

void Comm::send(std::span<const float> data, int destination, int tag) const {
  send_pieces(handle_, data, MPI_FLOAT, destination, tag);
}

void Comm::receive(std::span<float> data, int source, int tag) const {
  receive_pieces(handle_, data, MPI_FLOAT, source, tag);
}

void Comm::barrier() const { MPI_Barrier(handle_); }

void Comm::broadcast(std::string& text, int root) const {
  uint64_t size = text.size();
  MPI_Bcast(&size, 1, MPI_UINT64_T, root, handle_);
  text.resize(size);
  for (size_t offset = 0; offset < size; offset += kMaxPiece) {
    const size_t count = std::min<size_t>(kMaxPiece, size - offset);
    MPI_Bcast(text.data() + offset, static_cast<int>(count), MPI_CHAR, root, handle_);
  }
}

void Comm::broadcast(std::span<double> data, int root) const {
  for (size_t offset = 0; offset < data.size(); offset += kMaxPiece) {
    const size_t count = std::min(kMaxPiece, data.size() - offset);
    MPI_Bcast(data.data() + offset, static_cast<int>(count), MPI_DOUBLE, root, handle_);
  }
}

bool Comm::any(bool flag) const {
  int local = flag ? 1 : 0;
  int global = 0;
  MPI_Allreduce(&local, &global, 1, MPI_INT, MPI_LOR, handle_);
  return global != 0;
}

MpiSession::MpiSession() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    // The scheduler's coordinator runs on a thread of rank 0 (see scheduler.hpp).
    int provided = MPI_THREAD_SINGLE;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
  }
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) {
    MPI_Finalize();
  }
}

}  // namespace magrq::dist
