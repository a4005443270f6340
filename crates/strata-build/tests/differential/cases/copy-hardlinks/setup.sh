mkdir d; echo same > d/a; ln d/a d/b
