//===- Mpi.cpp - The library API: communicators ---------------------------===//
//
// jit::Communicator's 16-bit all_reduce (widened to f32, summed, rounded
// once) and jit::MpiWorld over the runtime's MPI session.
//
//===----------------------------------------------------------------------===//
#include "api/ApiInternal.h"

using namespace moe;
using namespace moe::api;

//===----------------------------------------------------------------------===//
// Communicators
//===----------------------------------------------------------------------===//

jit::Communicator::~Communicator() = default;

llvm::Error jit::Communicator::allReduceSum(uint16_t *data, size_t n, DType elem) {
  if (elem != DType::F16 && elem != DType::BF16)
    return apiErr(ErrorKind::Runtime, "allReduceSum: 16-bit sums are f16 or bf16, not {}",
                  dtypeName(elem));
  return allReduceSumWidened(data, n, toElem(elem),
                             [this](float *d, size_t m) { return allReduceSum(d, m); });
}

struct jit::MpiWorld::State {
  std::unique_ptr<MpiSession> session;
  std::unique_ptr<MpiCommunicator> comm;
};

jit::MpiWorld::MpiWorld(std::unique_ptr<State> s) : s(std::move(s)) {}
jit::MpiWorld::~MpiWorld() {
  s->comm.reset();
  s->session.reset(); // MPI_Finalize
}

llvm::Expected<std::unique_ptr<jit::MpiWorld>> jit::MpiWorld::init(int *argc, char ***argv) {
  if (!mpiSupported())
    return apiErr(ErrorKind::Runtime,
                  "this libmoe was built without MPI (no MPI was found when it was configured)");
  auto session = MpiSession::init(argc, argv);
  if (!session)
    return withKind(ErrorKind::Runtime, session.takeError());
  auto st = std::make_unique<State>();
  st->comm = std::make_unique<MpiCommunicator>(**session);
  st->session = std::move(*session);
  return std::unique_ptr<MpiWorld>(new MpiWorld(std::move(st)));
}

int jit::MpiWorld::rank() const { return s->session->rank(); }
int jit::MpiWorld::size() const { return s->session->size(); }
llvm::Error jit::MpiWorld::allReduceSum(float *data, size_t n) {
  return s->comm->allReduceSum(data, n);
}
llvm::Error jit::MpiWorld::allReduceSum(uint16_t *data, size_t n, DType elem) {
  if (elem != DType::F16 && elem != DType::BF16)
    return apiErr(ErrorKind::Runtime, "allReduceSum: 16-bit sums are f16 or bf16, not {}",
                  dtypeName(elem));
  return s->comm->allReduceSum(data, n, toElem(elem));
}
void jit::MpiWorld::abort(int code) { s->session->abort(code); }

