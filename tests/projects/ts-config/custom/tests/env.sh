test "$SHOP_URL" = "http://shop.test" && test "$SHOP_USER" = guest
