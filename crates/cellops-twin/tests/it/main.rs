mod scratch {}
