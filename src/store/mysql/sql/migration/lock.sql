SELECT GET_LOCK('sessionware_migrate', ?)
