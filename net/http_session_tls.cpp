// http_session over TLS (SPEC §8 native TLS); http_session_plain.cpp has the
// plain one, so the two compile in parallel.
#include "net/http_session_impl.hpp"

namespace portal {

template class http_session<tls_stream>;

} // namespace portal
