"""IP rights: organisations, marks and geographical indications, authorised users,
production areas, OCOP products, dashboards and infringement cases."""
