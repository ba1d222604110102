// http_session over plain TCP; http_session_tls.cpp has the TLS one, so the
// two compile in parallel.
#include "net/http_session_impl.hpp"

namespace portal {

template class http_session<plain_stream>;

} // namespace portal
