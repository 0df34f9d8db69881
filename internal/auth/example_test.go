package auth_test

import (
	"fmt"

	"github.com/ferry-dev/ferry/internal/auth"
)

func ExampleAuthorize() {
	grant, _ := auth.ParseGrant("promoter:shop")
	grants := []auth.Grant{grant}

	d := auth.Authorize(grants, auth.ActionPromote, "shop", "prod")
	fmt.Println(d.Allowed, d.Reason)

	d = auth.Authorize(grants, auth.ActionApprove, "shop", "prod")
	fmt.Println(d.Allowed, d.Reason)
	fmt.Println("need:", d.Need)
	// Output:
	// true allowed to promote into shop/prod by promoter on shop
	// false role "approver" on "shop/prod" (or broader) is required to approve promotions into shop/prod; the token has: promoter on shop
	// need: approver on shop/prod
}

func ExampleParseExpiry() {
	for _, s := range []string{"90d", "12h", "1d12h", "soon"} {
		d, err := auth.ParseExpiry(s)
		fmt.Println(d, err)
	}
	// Output:
	// 2160h0m0s <nil>
	// 12h0m0s <nil>
	// 36h0m0s <nil>
	// 0s expiry "soon": want a duration such as 12h, a number of days such as 90d, or never
}
