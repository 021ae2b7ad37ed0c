// The two online extractors, compiled once into the library.
#include "synctalk/online.h"

namespace synctalk {

template class OnlineExtractor<MelProcessor>;
template class OnlineExtractor<FbankProcessor>;

}  // namespace synctalk
