#include "dist/comm.hpp"

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

MpiSession::MpiSession(int& argc, char**& argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    MPI_Init(&argc, &argv);
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
