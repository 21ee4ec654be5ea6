(SELECT md5(coalesce(string_agg(md5(concat_ws(E'\x1f', schema_name, table_name, tenant_column, installed_using,
                                              installed_check, coalesce(installed_using_md5, ''),
                                              coalesce(installed_check_md5, ''),
                                              coalesce(installed_using_tree, ''), coalesce(installed_check_tree, ''),
                                              original_rls, original_force, original_public_privileges::text)),
                                '' ORDER BY schema_name, table_name), ''))
 FROM rlsctl.tenant_tables)
