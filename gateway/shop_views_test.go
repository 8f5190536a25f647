package gateway

import "github.com/spa-engine/spa/actors/service/shop"

// The catalogue's JSON forms are the shop service's (they are also the
// audit details of the puts); the tests decode answers into them under
// the names they had in this package.
type (
	productJSON      = shop.ProductJSON
	shopCategoryJSON = shop.CategoryJSON
)
