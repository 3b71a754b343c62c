-- The sample database of the `db` plugin: `sqlite3 examples/shop.db < examples/shop.sql`
-- (re)creates examples/shop.db. Small on purpose: three customers, five products, six orders.

DROP TABLE IF EXISTS order_items;
DROP TABLE IF EXISTS orders;
DROP TABLE IF EXISTS products;
DROP TABLE IF EXISTS customers;

CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE,
    country TEXT NOT NULL
);

CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    price REAL NOT NULL CHECK (price >= 0),
    stock INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    placed_at TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'shipped', 'cancelled'))
);

CREATE TABLE order_items (
    order_id INTEGER NOT NULL REFERENCES orders (id),
    product_id INTEGER NOT NULL REFERENCES products (id),
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, product_id)
);

INSERT INTO customers (id, name, email, country) VALUES
    (1, 'Ada Lovelace', 'ada@example.com', 'GB'),
    (2, 'Grace Hopper', 'grace@example.com', 'US'),
    (3, 'Edsger Dijkstra', 'edsger@example.com', 'NL');

INSERT INTO products (id, name, price, stock) VALUES
    (1, 'Notebook', 4.5, 120),
    (2, 'Fountain pen', 32.0, 15),
    (3, 'Ink bottle', 7.25, 40),
    (4, 'Desk lamp', 48.9, 6),
    (5, 'Paper clips', 1.2, 500);

INSERT INTO orders (id, customer_id, placed_at, status) VALUES
    (1, 1, '2026-10-02', 'shipped'),
    (2, 1, '2026-11-14', 'open'),
    (3, 2, '2026-09-21', 'shipped'),
    (4, 2, '2026-11-20', 'cancelled'),
    (5, 3, '2026-11-01', 'shipped'),
    (6, 3, '2026-11-25', 'open');

INSERT INTO order_items (order_id, product_id, quantity) VALUES
    (1, 1, 3), (1, 3, 1),
    (2, 2, 1),
    (3, 4, 1), (3, 5, 10),
    (4, 1, 1),
    (5, 2, 2), (5, 3, 2),
    (6, 5, 100);
