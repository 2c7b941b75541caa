//===- MpiCommunicator.h - SPMD ranks as MPI processes ----------*- C++ -*-===//
//
// One rank per process of MPI_COMM_WORLD (Open MPI), for ranks in several
// processes or machines: `mpirun -np N moe-run --mpi ...`.
//
// Determinism. MPI_Allreduce does not specify its reduction order (it may
// depend on the algorithm, the message size and the process placement), so
// allReduceSum does not use it. Every rank gathers every rank's n floats
// (MPI_Allgather, in chunks) and sums them itself in rank order, rank 0
// first, starting from +0.0f: exactly the additions InProcessGroup makes.
// Every rank therefore holds bit-identical sums, equal bit for bit to the
// in-process communicator's for the same contributions, from run to run.
// Before the data, the ranks exchange their element counts, so ranks that
// disagree on n get an llvm::Error (on every rank) instead of undefined
// behaviour. f16/bf16 reductions gather the 16-bit values (half the bytes)
// and widen them to f32 on arrival; the sum is the same f32 sum, rounded
// once to the narrow type.
//
// Failures. Calls return llvm::Error (MPI_COMM_WORLD's error handler is
// MPI_ERRORS_RETURN). A rank whose run fails must not leave the others
// blocked in a collective: the caller prints its error, naming the rank, and
// calls MpiSession::abort(), i.e. MPI_Abort(MPI_COMM_WORLD, 1), which ends
// every process of the job; mpirun then exits non-zero. A rank that merely
// returns an error and finalises would leave the others waiting forever.
//
// Without MPI at configure time (MOE_HAVE_MPI undefined) this header still
// compiles and links: mpiSupported() is false and MpiSession::init fails.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "runtime/Communicator.h"

#include <memory>
#include <string>
#include <vector>

namespace moe {

/// Whether this build has MPI support (MPI was found when it was configured).
bool mpiSupported();

/// MPI_Init on creation, MPI_Finalize on destruction; at most one per process
/// (MPI cannot be initialised twice).
class MpiSession {
public:
  /// Initialises MPI (works under mpirun, and without it as a world of one).
  static llvm::Expected<std::unique_ptr<MpiSession>> init(int *argc, char ***argv);
  ~MpiSession();
  MpiSession(const MpiSession &) = delete;
  MpiSession &operator=(const MpiSession &) = delete;

  /// This process's rank in MPI_COMM_WORLD, and the world size.
  int rank() const { return r; }
  int size() const { return n; }

  /// Ends every process of the job: MPI_Abort(MPI_COMM_WORLD, code). Flushes
  /// standard output and error first; never returns. A watchdog ends this
  /// process on its own (SIGALRM, which mpirun sees as an abnormal end and
  /// answers by ending the others) should MPI_Abort not return within
  /// kAbortWatchdogSeconds, e.g. on a loaded machine with ranks in
  /// MPI_Finalize.
  [[noreturn]] void abort(int code = 1);
  static constexpr unsigned kAbortWatchdogSeconds = 10;

  /// Collective: true on every rank when `failed` is true on any. How the
  /// ranks end a job whose last step (rank 0 writing the results) may fail
  /// on one rank alone: every rank learns it and exits non-zero through a
  /// normal MPI_Finalize, with no abort racing the others' finalize.
  llvm::Expected<bool> anyFailed(bool failed);

  /// Collective: `bytes` becomes `root`'s bytes on every rank.
  llvm::Error broadcast(std::string &bytes, int root = 0);
  /// Collective: returns when every rank has called it (MPI_Barrier); how
  /// timed runs start together.
  llvm::Error barrier();
  /// Collective: `root` gets every rank's `bytes`, in rank order (the others
  /// an empty list). Small messages only (under 2 GiB each).
  llvm::Expected<std::vector<std::string>> gather(const std::string &bytes, int root = 0);

private:
  MpiSession(int rank, int size) : r(rank), n(size) {}
  int r, n;
};

/// A Communicator over MPI_COMM_WORLD (see the file comment).
class MpiCommunicator : public Communicator {
public:
  explicit MpiCommunicator(MpiSession &session) : r(session.rank()), n(session.size()) {}
  int rank() const override { return r; }
  int size() const override { return n; }
  /// Collective: every rank calls it at the same point with the same count.
  llvm::Error allReduceSum(float *data, size_t count) override;
  /// f16/bf16: gathers the 16-bit values, sums them widened to f32 in rank
  /// order and rounds once (Communicator's contract).
  llvm::Error allReduceSum(uint16_t *data, size_t count, ElemType elem) override;

  /// Largest number of floats gathered at once (all ranks' chunks together);
  /// longer reductions run in chunks, so memory and MPI's int counts stay
  /// bounded. The result does not depend on it.
  static constexpr size_t kGatherFloats = size_t(1) << 22;

private:
  int r, n;
  std::vector<float> gathered; ///< scratch: every rank's chunk, rank-major
  std::vector<uint16_t> gathered16; ///< the same for 16-bit reductions
  std::vector<float> sum16; ///< the f32 sums of a 16-bit chunk
};

} // namespace moe
