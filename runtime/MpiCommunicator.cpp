//===- MpiCommunicator.cpp - SPMD ranks as MPI processes ------------------===//
#include "runtime/MpiCommunicator.h"
#include "ir/Error.h"

#include "fmt/format.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <csignal>
#include <unistd.h>

#ifdef MOE_HAVE_MPI
// The C API only: no deprecated C++ bindings.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

using namespace moe;

#ifdef MOE_HAVE_MPI

bool moe::mpiSupported() { return true; }

/// `what` failed with MPI error code `rc`, in MPI's words.
static llvm::Error mpiError(int rc, const char *what) {
  char s[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS)
    return err(fmt::format("{} failed (MPI error {})", what, rc));
  return err(fmt::format("{} failed: {}", what, std::string(s, len)));
}

llvm::Expected<std::unique_ptr<MpiSession>> MpiSession::init(int *argc, char ***argv) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized || finalized)
    return err("MPI was already initialised in this process (one MpiSession per process)");
  if (int rc = MPI_Init(argc, argv); rc != MPI_SUCCESS)
    return err(fmt::format("MPI_Init failed (MPI error {})", rc));
  // Errors come back as codes (and then llvm::Error), not as MPI's abort.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank = 0, size = 1;
  if (int rc = MPI_Comm_rank(MPI_COMM_WORLD, &rank); rc != MPI_SUCCESS)
    return mpiError(rc, "MPI_Comm_rank");
  if (int rc = MPI_Comm_size(MPI_COMM_WORLD, &size); rc != MPI_SUCCESS)
    return mpiError(rc, "MPI_Comm_size");
  return std::unique_ptr<MpiSession>(new MpiSession(rank, size));
}

MpiSession::~MpiSession() { MPI_Finalize(); }

void MpiSession::abort(int code) {
  llvm::outs().flush();
  llvm::errs().flush();
  std::fflush(stdout);
  std::fflush(stderr);
  // SIGALRM's default action ends the process if MPI_Abort hangs.
  signal(SIGALRM, SIG_DFL);
  alarm(kAbortWatchdogSeconds);
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code); // MPI_Abort does not return; if it ever did, still fail
}

llvm::Expected<bool> MpiSession::anyFailed(bool failed) {
  int mine = failed ? 1 : 0, any = 0;
  if (int rc = MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
      rc != MPI_SUCCESS)
    return mpiError(rc, "MPI_Allreduce (the ranks' final status)");
  return any != 0;
}

llvm::Error MpiSession::broadcast(std::string &bytes, int root) {
  uint64_t len = bytes.size();
  if (int rc = MPI_Bcast(&len, 1, MPI_UINT64_T, root, MPI_COMM_WORLD); rc != MPI_SUCCESS)
    return mpiError(rc, "MPI_Bcast");
  bytes.resize(len);
  constexpr uint64_t kChunk = uint64_t(1) << 30; // MPI counts are int
  for (uint64_t off = 0; off < len; off += kChunk) {
    int c = (int)std::min(kChunk, len - off);
    if (int rc = MPI_Bcast(bytes.data() + off, c, MPI_CHAR, root, MPI_COMM_WORLD);
        rc != MPI_SUCCESS)
      return mpiError(rc, "MPI_Bcast");
  }
  return llvm::Error::success();
}

llvm::Error MpiSession::barrier() {
  if (int rc = MPI_Barrier(MPI_COMM_WORLD); rc != MPI_SUCCESS)
    return mpiError(rc, "MPI_Barrier");
  return llvm::Error::success();
}

llvm::Expected<std::vector<std::string>> MpiSession::gather(const std::string &bytes,
                                                            int root) {
  if (bytes.size() > (size_t)INT32_MAX)
    return err(fmt::format("gather: {} bytes are too many for one message", bytes.size()));
  int len = (int)bytes.size();
  std::vector<int> lens(r == root ? n : 0), offs(r == root ? n : 0);
  if (int rc = MPI_Gather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, root, MPI_COMM_WORLD);
      rc != MPI_SUCCESS)
    return mpiError(rc, "MPI_Gather");
  std::string all;
  if (r == root) {
    int64_t total = 0;
    for (int q = 0; q < n; ++q) {
      offs[q] = (int)total;
      total += lens[q];
    }
    if (total > INT32_MAX)
      return err(fmt::format("gather: {} bytes are too many for one message", total));
    all.resize(total);
  }
  if (int rc = MPI_Gatherv(bytes.data(), len, MPI_CHAR, all.data(), lens.data(), offs.data(),
                           MPI_CHAR, root, MPI_COMM_WORLD);
      rc != MPI_SUCCESS)
    return mpiError(rc, "MPI_Gatherv");
  std::vector<std::string> out;
  for (int q = 0; q < (int)lens.size(); ++q)
    out.push_back(all.substr(offs[q], lens[q]));
  return out;
}

/// Every rank must reduce the same count: exchange the counts first, so a
/// mismatch is an error on every rank rather than a truncated gather.
static llvm::Error checkCounts(size_t count, int n) {
  uint64_t mine = count;
  std::vector<uint64_t> counts(n);
  if (int rc = MPI_Allgather(&mine, 1, MPI_UINT64_T, counts.data(), 1, MPI_UINT64_T,
                             MPI_COMM_WORLD);
      rc != MPI_SUCCESS)
    return mpiError(rc, "all_reduce: MPI_Allgather");
  for (int q = 1; q < n; ++q)
    if (counts[q] != counts[0])
      return err(fmt::format("all_reduce size mismatch: rank {} has {} elements, rank 0 has {}",
                             q, counts[q], counts[0]));
  return llvm::Error::success();
}

llvm::Error MpiCommunicator::allReduceSum(float *data, size_t count) {
  if (auto e = checkCounts(count, n))
    return e;
  size_t chunk = std::max<size_t>(1, kGatherFloats / (size_t)n);
  for (size_t off = 0; off < count; off += chunk) {
    size_t c = std::min(chunk, count - off);
    gathered.resize(c * (size_t)n);
    if (int rc = MPI_Allgather(data + off, (int)c, MPI_FLOAT, gathered.data(), (int)c,
                               MPI_FLOAT, MPI_COMM_WORLD);
        rc != MPI_SUCCESS)
      return mpiError(rc, "all_reduce: MPI_Allgather");
    // The additions InProcessGroup makes: +0.0f, then rank 0, 1, ... in order.
    float *out = data + off;
    std::fill(out, out + c, 0.0f);
    for (int q = 0; q < n; ++q) {
      const float *g = gathered.data() + (size_t)q * c;
      for (size_t i = 0; i < c; ++i)
        out[i] += g[i];
    }
  }
  return llvm::Error::success();
}

llvm::Error MpiCommunicator::allReduceSum(uint16_t *data, size_t count, ElemType elem) {
  if (auto e = checkCounts(count, n))
    return e;
  size_t chunk = std::max<size_t>(1, kGatherFloats / (size_t)n);
  for (size_t off = 0; off < count; off += chunk) {
    size_t c = std::min(chunk, count - off);
    gathered16.resize(c * (size_t)n);
    if (int rc = MPI_Allgather(data + off, (int)c, MPI_UINT16_T, gathered16.data(), (int)c,
                               MPI_UINT16_T, MPI_COMM_WORLD);
        rc != MPI_SUCCESS)
      return mpiError(rc, "all_reduce: MPI_Allgather");
    // The f32 additions of the float overload on the widened values, then
    // one rounding: Communicator::allReduceSum(uint16_t *)'s result.
    sum16.assign(c, 0.0f);
    for (int q = 0; q < n; ++q) {
      const uint16_t *g = gathered16.data() + (size_t)q * c;
      for (size_t i = 0; i < c; ++i)
        sum16[i] += widen16(elem, g[i]);
    }
    for (size_t i = 0; i < c; ++i)
      data[off + i] = narrow16(elem, sum16[i]);
  }
  return llvm::Error::success();
}

#else // !MOE_HAVE_MPI

bool moe::mpiSupported() { return false; }

static const char *kNoMpi =
    "built without MPI (no MPI was found when it was configured; install openmpi-bin and "
    "libopenmpi-dev, then reconfigure)";

llvm::Expected<std::unique_ptr<MpiSession>> MpiSession::init(int *, char ***) {
  return err(kNoMpi);
}
MpiSession::~MpiSession() = default;
void MpiSession::abort(int code) {
  llvm::outs().flush();
  llvm::errs().flush();
  std::_Exit(code);
}
llvm::Error MpiSession::broadcast(std::string &, int) { return err(kNoMpi); }
llvm::Error MpiSession::barrier() { return err(kNoMpi); }
llvm::Expected<std::vector<std::string>> MpiSession::gather(const std::string &, int) {
  return err(kNoMpi);
}
llvm::Expected<bool> MpiSession::anyFailed(bool failed) { return failed; }
llvm::Error MpiCommunicator::allReduceSum(float *, size_t) { return err(kNoMpi); }
llvm::Error MpiCommunicator::allReduceSum(uint16_t *, size_t, ElemType) { return err(kNoMpi); }

#endif
