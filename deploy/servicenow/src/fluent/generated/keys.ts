import '@servicenow/sdk/global'

declare global {
    namespace Now {
        namespace Internal {
            interface Keys extends KeysRegistry {
                explicit: {
                    bom_json: {
                        table: 'sys_module'
                        id: '6876a0f2ca804e948344663d6761171a'
                    }
                    br_delete: {
                        table: 'sys_script'
                        id: '20adea0b03b84154b8cfdff9c46e4c7e'
                    }
                    br_push: {
                        table: 'sys_script'
                        id: 'c34bf87b31d1412bb9db4a662b149d92'
                    }
                    br_similar: {
                        table: 'sys_script'
                        id: 'e344c7d15e7b4538913a2b96e6966fc0'
                    }
                    fn_delete_incident_accept: {
                        table: 'sys_rest_message_fn_headers'
                        id: 'b7e5f3714d4c4c0195e4e9986b1fae99'
                    }
                    fn_delete_incident_base_url: {
                        table: 'sys_rest_message_fn_parameters'
                        id: '6f398a7763334d7eb78ab394af770361'
                    }
                    fn_delete_incident_ct: {
                        table: 'sys_rest_message_fn_headers'
                        id: '8b79a88b6fdc4ae9b6bcc26a13e8bf98'
                    }
                    fn_delete_incident_number: {
                        table: 'sys_rest_message_fn_parameters'
                        id: '69777f354c9142c494b56160b09dca0c'
                    }
                    fn_feedback_accept: {
                        table: 'sys_rest_message_fn_headers'
                        id: '8d72f45356a840438d026f514d9ec506'
                    }
                    fn_feedback_base_url: {
                        table: 'sys_rest_message_fn_parameters'
                        id: 'aeb3118aa2dd44ac9cc96359ffea7697'
                    }
                    fn_feedback_ct: {
                        table: 'sys_rest_message_fn_headers'
                        id: 'b27be0e4e2674a1b8a51fe35f5c9b450'
                    }
                    fn_put_incident_accept: {
                        table: 'sys_rest_message_fn_headers'
                        id: '0e1aaaaf72324b67ba4484c594264526'
                    }
                    fn_put_incident_base_url: {
                        table: 'sys_rest_message_fn_parameters'
                        id: 'e9e869092ea94332939777deb763661d'
                    }
                    fn_put_incident_ct: {
                        table: 'sys_rest_message_fn_headers'
                        id: '6ba93472222b469488ca7e9b427adca8'
                    }
                    fn_put_incident_number: {
                        table: 'sys_rest_message_fn_parameters'
                        id: '880af32a54d142fdb180a54e1f769704'
                    }
                    fn_similar_accept: {
                        table: 'sys_rest_message_fn_headers'
                        id: 'fa3b451001ac4aa0bd5aef7eb4dc29e2'
                    }
                    fn_similar_base_url: {
                        table: 'sys_rest_message_fn_parameters'
                        id: '57a82108f103401490f0b0d7b5667d85'
                    }
                    fn_similar_ct: {
                        table: 'sys_rest_message_fn_headers'
                        id: '7c4569b7ab1f4adaba1fdd6426682f3e'
                    }
                    job_retry: {
                        table: 'sysauto_script'
                        id: '9849bccdd4f4496b9c80b41d2db4e0c9'
                    }
                    p_auth_profile: {
                        table: 'sys_properties'
                        id: '418298ce128048449a016dd6e1047aeb'
                    }
                    p_auth_type: {
                        table: 'sys_properties'
                        id: '42241e9c54f94a6d9f8aa80e7a2f7c7d'
                    }
                    p_delete_on: {
                        table: 'sys_properties'
                        id: 'a505f06fee814cbbbc255027a2920024'
                    }
                    p_delete_timeout: {
                        table: 'sys_properties'
                        id: '005373d2f689408a80521c3e2efccd8f'
                    }
                    p_domain: {
                        table: 'sys_properties'
                        id: 'c71cd89a9f524e7691d69c444539e55e'
                    }
                    p_dup_field: {
                        table: 'sys_properties'
                        id: '3448dbaa2c0f47d18d8b9e17049bf81b'
                    }
                    p_mid: {
                        table: 'sys_properties'
                        id: 'a769a068f25c4108846a4c1e00995f00'
                    }
                    p_note_on: {
                        table: 'sys_properties'
                        id: '0d830bfec7fe4b608742a51146e15375'
                    }
                    p_push_on: {
                        table: 'sys_properties'
                        id: '49c1df8bb1e04aeb858901fa97e54a77'
                    }
                    p_resolution: {
                        table: 'sys_properties'
                        id: '42c899606d4143e5b53ec66ab2b001bc'
                    }
                    p_retry_base: {
                        table: 'sys_properties'
                        id: 'd6466a7e41344e75b972395bf28bc460'
                    }
                    p_retry_batch: {
                        table: 'sys_properties'
                        id: 'f5d9c54b0035473ea88245407e5e671a'
                    }
                    p_retry_cap: {
                        table: 'sys_properties'
                        id: 'aa475515a616467b84a8872ddd544426'
                    }
                    p_retry_max: {
                        table: 'sys_properties'
                        id: '8b7e3abfa9e74811ada983c8f1c21d2c'
                    }
                    p_similar_on: {
                        table: 'sys_properties'
                        id: 'a35798433c314dc8b9ce1df5e1b8dac5'
                    }
                    p_timeout: {
                        table: 'sys_properties'
                        id: 'e4a8ad4913a7464c8a0547c2200db976'
                    }
                    p_top_k: {
                        table: 'sys_properties'
                        id: '61b4cab221c44bc78302c98ca7add7c4'
                    }
                    p_url: {
                        table: 'sys_properties'
                        id: 'cc5e70ac44f74a91856a7a16c64bd2d0'
                    }
                    package_json: {
                        table: 'sys_module'
                        id: '904bb9838ced4cd1964c88c67b27855f'
                    }
                    rest_incident_sim: {
                        table: 'sys_rest_message'
                        id: '0811385c55964e668263446526a029dd'
                    }
                    rl_incident: {
                        table: 'sys_ui_related_list'
                        id: '8c45b2c9dc0d432d92001f56fbf79028'
                    }
                    rl_incident_suggestions: {
                        table: 'sys_ui_related_list_entry'
                        id: '7f1b9ac8ab7e4ac48c5fe96f1a6dbb3f'
                    }
                    si_client: {
                        table: 'sys_script_include'
                        id: 'c4ba4bbb3bf441eaa6682ed834ddadda'
                    }
                    si_queue: {
                        table: 'sys_script_include'
                        id: 'a27e9d180191450c836f019acca6ec3b'
                    }
                    si_suggestions: {
                        table: 'sys_script_include'
                        id: '8e37294a12a7491bb4a2dd365e3f1091'
                    }
                    ua_copy_resolution: {
                        table: 'sys_ui_action'
                        id: 'dfa2b1a82d674210a24de5c44eb0d76b'
                    }
                    ua_duplicate: {
                        table: 'sys_ui_action'
                        id: '38b41c7e7ea24753b9c68b3044e3f480'
                    }
                    ua_not_similar: {
                        table: 'sys_ui_action'
                        id: '3d6795cd7a0245b08097a8da0e8d157e'
                    }
                }
                composite: [
                    {
                        table: 'sys_choice_set'
                        id: '0060fd21377c4cd093bc7bbfb8f4c73d'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'feedback_state'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: '006ee04675c54839a384b7d6bbbe5845'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'retry_after_s'
                        }
                    },
                    {
                        table: 'sys_choice_set'
                        id: '01dc33fee83d495bb6a9b4f0dc6701cc'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'state'
                        }
                    },
                    {
                        table: 'sys_ui_list'
                        id: '02c564aeaea54d2b8b7b5675c1eb3c45'
                        deleted: true
                        key: {
                            name: 'x_incsim_suggestion'
                            view: {
                                id: '6acd2268e7d0436bbc65cb40c6ec532f'
                                key: {
                                    name: 'default_view'
                                }
                            }
                            sys_domain: 'global'
                            element: 'NULL'
                            relationship: 'NULL'
                            parent: 'NULL'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '03927949f04a443584aff35402757c99'
                        key: {
                            list_id: {
                                id: 'b6ed9d6abe154b42bdf7622efe2c6257'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'bm25'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: '03a3ac06944d4dd6acfef8e61365bc8c'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'incident_sys_id'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '03bf794ba137418296fe542992d6bbc8'
                        deleted: true
                        key: {
                            list_id: {
                                id: '02c564aeaea54d2b8b7b5675c1eb3c45'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '6acd2268e7d0436bbc65cb40c6ec532f'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'model_version'
                        }
                    },
                    {
                        table: 'sys_choice'
                        id: '0507ee4625144126af424cc47cff4236'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'verdict'
                            value: 'related'
                            language: 'en'
                            dependent_value: 'NULL'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '06fcefeae6fa4ad4bd6ebaa089d1addc'
                        key: {
                            list_id: {
                                id: '2f67cb8c050a42ceafe426fdc4cdfb61'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'incident'
                                }
                            }
                            element: 'suggested_state'
                        }
                    },
                    {
                        table: 'sys_rest_message_fn'
                        id: '07e8cf565400497f8e91e50f134db18b'
                        key: {
                            rest_message: '0811385c55964e668263446526a029dd'
                            function_name: 'put_incident'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '08358117ebdf4f10b844e9cff3d2bb87'
                        deleted: true
                        key: {
                            list_id: {
                                id: '21516c3256a14abd90cc4a5a945fcbe8'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '353d59be8f4441ec92f439c7042d420b'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'incident'
                                }
                            }
                            element: 'resolved_at'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: '08671005085f4f73bd2feb47a42dd3ac'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'NULL'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: '087024a0bd914650b56c480c65818d32'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'state'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_choice_set'
                        id: '0b909052d9cf4a658b463b09d5c6871d'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'verdict'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: '0e68cb1599b04f809747d1307c428686'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'close_notes'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: '10ccc77dc3664147ad6f13c497c7e886'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'incident'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_choice'
                        id: '13606cd750de4afc9860e71bafc9bbea'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'operation'
                            value: 'feedback'
                            language: 'en'
                            dependent_value: 'NULL'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: '13fc6c18e2ad463f8945918b119aa7df'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'threshold_target'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_rest_message_fn'
                        id: '15016f8ca6c94389878a4153bb9abf74'
                        key: {
                            rest_message: '0811385c55964e668263446526a029dd'
                            function_name: 'similar'
                        }
                    },
                    {
                        table: 'sys_choice_set'
                        id: '16251215ea7146fe8750115d290f2795'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'operation'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: '1aa7a98402d94e53962628e221a426f9'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'bm25'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: '2074518eebb14f068636175a3a95010d'
                        deleted: true
                        key: {
                            name: 'x_incsim_probe'
                            element: 'NULL'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_ui_list'
                        id: '21516c3256a14abd90cc4a5a945fcbe8'
                        deleted: true
                        key: {
                            name: 'x_incsim_suggestion'
                            view: {
                                id: '353d59be8f4441ec92f439c7042d420b'
                                key: {
                                    name: 'default_view'
                                }
                            }
                            sys_domain: 'global'
                            element: 'NULL'
                            relationship: 'NULL'
                            parent: 'incident'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: '222791b8054f42219837c276d02bffae'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'close_code'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: '22a7fb5d13244a66b9ca91414e4eae90'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'asked_at'
                        }
                    },
                    {
                        table: 'sys_db_object'
                        id: '2302325914f642b9bb7d0ee6f0e6be52'
                        key: {
                            name: 'x_incsim_suggestion'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: '2454e75b830a4927b38edf65d3e4a328'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'verdict_by'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: '245b50002a044b71b48c83a0769abcf9'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'last_status'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '251607fc07914f3dbda08cfcb4c9515e'
                        deleted: true
                        key: {
                            list_id: {
                                id: '21516c3256a14abd90cc4a5a945fcbe8'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '353d59be8f4441ec92f439c7042d420b'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'incident'
                                }
                            }
                            element: 'rank'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '258613385233406d918586aa0fb94fe1'
                        key: {
                            list_id: {
                                id: 'b6ed9d6abe154b42bdf7622efe2c6257'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'asked_at'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: '261a0aba0dfa41e9a0b6cb398ea08244'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'similar'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: '2660b8c821634cc697426747fee8135e'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'rank'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: '279dd0a9a5c2495980851ba336483b3a'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'close_code'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_choice'
                        id: '29d35b9a3186480f812ba5ae391773ec'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'feedback_state'
                            value: 'sent'
                            language: 'en'
                            dependent_value: 'NULL'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '2adf0e6ee2d747ac957d25d8e0cbe84b'
                        key: {
                            list_id: {
                                id: 'b6ed9d6abe154b42bdf7622efe2c6257'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'close_code'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: '2d5df2a8d4a84b488df2dec2705c56a2'
                        deleted: true
                        key: {
                            name: 'x_incsim_probe'
                            element: 'a'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_ui_list'
                        id: '2f67cb8c050a42ceafe426fdc4cdfb61'
                        key: {
                            name: 'x_incsim_suggestion'
                            view: {
                                id: 'Default view'
                                key: {
                                    name: 'NULL'
                                }
                            }
                            sys_domain: 'global'
                            element: 'NULL'
                            relationship: 'NULL'
                            parent: 'incident'
                        }
                    },
                    {
                        table: 'sys_choice'
                        id: '305baa9e61f34a148d28cbeca367d13a'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'feedback_state'
                            value: 'failed'
                            language: 'en'
                            dependent_value: 'NULL'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '3531abfb668543b08e20f5bdcf72bfcb'
                        deleted: true
                        key: {
                            list_id: {
                                id: '02c564aeaea54d2b8b7b5675c1eb3c45'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '6acd2268e7d0436bbc65cb40c6ec532f'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'threshold_target'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '36d00709cf0c47b1a5234496313917d0'
                        key: {
                            list_id: {
                                id: '2f67cb8c050a42ceafe426fdc4cdfb61'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'incident'
                                }
                            }
                            element: 'short_description'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '36fe9854253043b5b2ab935474a75c83'
                        deleted: true
                        key: {
                            list_id: {
                                id: '02c564aeaea54d2b8b7b5675c1eb3c45'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '6acd2268e7d0436bbc65cb40c6ec532f'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'threshold'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: '3760d451f89d4d1c94ae82c3a3d97e9d'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'feedback_state'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: '37dc033d8f974252a46a760067326e9b'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'number'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '3b32429248354e3381c9a022c64a7f1e'
                        deleted: true
                        key: {
                            list_id: {
                                id: '21516c3256a14abd90cc4a5a945fcbe8'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '353d59be8f4441ec92f439c7042d420b'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'incident'
                                }
                            }
                            element: 'suggested'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: '3c1b0aaf53a94f71aeec8379354c7bf9'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'suggested'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: '3c524336c48e4616a3decff836a43edf'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'suggested_state'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '3d404eebd1064499b4529bc3267c0f6c'
                        deleted: true
                        key: {
                            list_id: {
                                id: '02c564aeaea54d2b8b7b5675c1eb3c45'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '6acd2268e7d0436bbc65cb40c6ec532f'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'feedback_state'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: '3de7361334e44e429f8a1265f032abcf'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'score'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '3fdb9e9cf31e473eb823e78ce7ef1388'
                        key: {
                            list_id: {
                                id: '2f67cb8c050a42ceafe426fdc4cdfb61'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'incident'
                                }
                            }
                            element: 'close_code'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: '402de7af1d7b435eb9a8fb1a53ea70fd'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'NULL'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: '40c2341dec8644de934cab191e357e1c'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'retry_after_s'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: '441f2d79342344ad8c2169b8600f67eb'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'payload'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: '488033ec55794bf5acdc7a794065f16f'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'close_notes'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '4b9e35d48b8e42e1855dc2ba78c16c5b'
                        deleted: true
                        key: {
                            list_id: {
                                id: '21516c3256a14abd90cc4a5a945fcbe8'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '353d59be8f4441ec92f439c7042d420b'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'incident'
                                }
                            }
                            element: 'suggested_state'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '4c8f60af052c435ca30eaf47c61f7b4c'
                        deleted: true
                        key: {
                            list_id: {
                                id: '21516c3256a14abd90cc4a5a945fcbe8'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '353d59be8f4441ec92f439c7042d420b'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'incident'
                                }
                            }
                            element: 'short_description'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: '4e7f5b67f2c6430d98842db47c7cec72'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'short_description'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: '4f68ad69eacc46cda05a9a1461020716'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'verdict_by'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: '507254e309f64ecf9222edf0efd49081'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'bm25'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '50dc5bb56e5348a2929a18a683a5b214'
                        deleted: true
                        key: {
                            list_id: {
                                id: '02c564aeaea54d2b8b7b5675c1eb3c45'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '6acd2268e7d0436bbc65cb40c6ec532f'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'similar'
                        }
                    },
                    {
                        table: 'sys_db_object'
                        id: '524ae8de75aa4d278ac961bce1c3d3a8'
                        deleted: true
                        key: {
                            name: 'x_incsim_probe'
                        }
                    },
                    {
                        table: 'sys_rest_message_fn'
                        id: '52a7b2d6ff8d441ca2b373a533e9a27f'
                        key: {
                            rest_message: '0811385c55964e668263446526a029dd'
                            function_name: 'delete_incident'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '53434b2de8ae405291fc6e141156bd12'
                        deleted: true
                        key: {
                            list_id: {
                                id: '02c564aeaea54d2b8b7b5675c1eb3c45'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '6acd2268e7d0436bbc65cb40c6ec532f'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'asked_at'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: '56abc0aac256406ea05c812617a92999'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'operation'
                        }
                    },
                    {
                        table: 'sys_choice'
                        id: '5cac47be98d44cadbbcae89f86c7338f'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'verdict'
                            value: 'duplicate'
                            language: 'en'
                            dependent_value: 'NULL'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '5d2a87255a684ff79a790306e6895f2f'
                        key: {
                            list_id: {
                                id: '2f67cb8c050a42ceafe426fdc4cdfb61'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'incident'
                                }
                            }
                            element: 'verdict'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '5d65abf003474ae18f38a8e3d3590bdf'
                        key: {
                            list_id: {
                                id: '2f67cb8c050a42ceafe426fdc4cdfb61'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'incident'
                                }
                            }
                            element: 'suggested'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: '5d9348a029d04318bef2686d81cb6afc'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'model_version'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_choice'
                        id: '60b57a2c8a27432882c73692c50553b4'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'state'
                            value: 'queued'
                            language: 'en'
                            dependent_value: 'NULL'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '645ce890ad864a51b204a4ce5bca4038'
                        key: {
                            list_id: {
                                id: '2f67cb8c050a42ceafe426fdc4cdfb61'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'incident'
                                }
                            }
                            element: 'threshold_calibrated'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: '648593f02b734bdc8956d1d5e4b4c059'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'verdict'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: '64973703423e4ddeac9dd9e6fe7491e0'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'incident_sys_id'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: '6ba0af4ec26b4144af8533d75211a9c4'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'suggested_number'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: '6bbf85f9273b4a3492c548319cb1a1e8'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'last_error'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '6c835209797a4971b8c2171e48cd17e2'
                        key: {
                            list_id: {
                                id: 'b6ed9d6abe154b42bdf7622efe2c6257'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'threshold_calibrated'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '6ec615e98c9f41a2b20dfbc00db71227'
                        key: {
                            list_id: {
                                id: 'b6ed9d6abe154b42bdf7622efe2c6257'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'feedback_state'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '7558ed980bb945e5b54280bce300b816'
                        deleted: true
                        key: {
                            list_id: {
                                id: '02c564aeaea54d2b8b7b5675c1eb3c45'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '6acd2268e7d0436bbc65cb40c6ec532f'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'verdict'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: '76f40cc041f840c5a40dde9e3faf8bd9'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'attempts'
                        }
                    },
                    {
                        table: 'ua_table_licensing_config'
                        id: '77654dbdc1fd4adf87c90704ac409208'
                        key: {
                            name: 'x_incsim_suggestion'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '79b529cf0d7a4b8abaa6c8e0a9875038'
                        key: {
                            list_id: {
                                id: '2f67cb8c050a42ceafe426fdc4cdfb61'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'incident'
                                }
                            }
                            element: 'score'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '7a3827249ef741e696d070458a1bca57'
                        deleted: true
                        key: {
                            list_id: {
                                id: '02c564aeaea54d2b8b7b5675c1eb3c45'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '6acd2268e7d0436bbc65cb40c6ec532f'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'bm25'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: '7ae63e4af67f456b854fc4e61e921f5b'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'NULL'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: '7dc961b6dba54c47a79471ed7699ab1d'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'operation'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: '7e66355c9eb64b9d9f82683ef360c5f2'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'threshold_target'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: '7f277a03a9b54dd684a072f270cb3f8d'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'threshold'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: '81b6b50f33cb48daad3f967a47f65ddf'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'threshold'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '846a64e794f34f8e95270cd0b9b28e89'
                        key: {
                            list_id: {
                                id: 'b6ed9d6abe154b42bdf7622efe2c6257'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'suggested_number'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '85fe48894798407a8dccc9bf6d4af276'
                        key: {
                            list_id: {
                                id: 'b6ed9d6abe154b42bdf7622efe2c6257'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'similar'
                        }
                    },
                    {
                        table: 'sys_choice'
                        id: '8655bb75c6a0402fa26a14234caab5c9'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'state'
                            value: 'done'
                            language: 'en'
                            dependent_value: 'NULL'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '8963f5c84c1642dba7dc5fbc5085b547'
                        deleted: true
                        key: {
                            list_id: {
                                id: '02c564aeaea54d2b8b7b5675c1eb3c45'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '6acd2268e7d0436bbc65cb40c6ec532f'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'short_description'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: '8a6bd2bd1a7141d7a40ad4bcffd1fa5d'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'next_attempt'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '8a91bb7c5dbc432d819cfa34e6aa4e01'
                        key: {
                            list_id: {
                                id: 'b6ed9d6abe154b42bdf7622efe2c6257'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'score'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: '8be9cf5c270842ef94717723c4b4b2c3'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'similar'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '8ef54d4c9dbd48a58246b28ff732ed57'
                        deleted: true
                        key: {
                            list_id: {
                                id: '02c564aeaea54d2b8b7b5675c1eb3c45'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '6acd2268e7d0436bbc65cb40c6ec532f'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'score'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: '90f8bb9247f3486e963cf03e4fc18720'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'verdict_at'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '9194fed7161c4ece828638985f8139a3'
                        key: {
                            list_id: {
                                id: 'b6ed9d6abe154b42bdf7622efe2c6257'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'verdict_by'
                        }
                    },
                    {
                        table: 'sys_choice'
                        id: '922e83ffc9e94cd0b8b649bc06bbbba3'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'feedback_state'
                            value: 'queued'
                            language: 'en'
                            dependent_value: 'NULL'
                        }
                    },
                    {
                        table: 'sys_choice'
                        id: '92da9003a7c4406793c81fce7bbe8d8b'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'operation'
                            value: 'delete'
                            language: 'en'
                            dependent_value: 'NULL'
                        }
                    },
                    {
                        table: 'sys_rest_message_fn'
                        id: '951a233112a14174b5cb8686e9d66071'
                        key: {
                            rest_message: '0811385c55964e668263446526a029dd'
                            function_name: 'feedback'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: '973accf8b7464550b550e413280de6a7'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'incident'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '986b3b142afe4d91af0037b08ffa2543'
                        deleted: true
                        key: {
                            list_id: {
                                id: '21516c3256a14abd90cc4a5a945fcbe8'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '353d59be8f4441ec92f439c7042d420b'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'incident'
                                }
                            }
                            element: 'verdict'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: '988ddc2e494349ba98c6067daccaf2d5'
                        deleted: true
                        key: {
                            list_id: {
                                id: '02c564aeaea54d2b8b7b5675c1eb3c45'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '6acd2268e7d0436bbc65cb40c6ec532f'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'dense'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: '98dd1548202541448b6ddce63de00804'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'state'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: '993b1c1d13bf4cf0818d11a74af086c4'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'feedback_state'
                        }
                    },
                    {
                        table: 'sys_db_object'
                        id: '9af1798fa518455385939adc94058ce3'
                        key: {
                            name: 'x_incsim_retry'
                        }
                    },
                    {
                        table: 'sys_index'
                        id: '9d10f08705f44334a8ccb7170d1229da'
                        key: {
                            logical_table_name: 'x_incsim_retry'
                            col_name_string: 'state,next_attempt'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'a13ccd1636e44ea3a76e73493b9381dd'
                        key: {
                            list_id: {
                                id: 'b6ed9d6abe154b42bdf7622efe2c6257'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'incident'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: 'a26ca4923fae492fabc1748191d1615c'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'NULL'
                        }
                    },
                    {
                        table: 'ua_table_licensing_config'
                        id: 'a440fd56a03e48f682168cf53cd22230'
                        key: {
                            name: 'x_incsim_retry'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: 'a5ca4e775c6d400ba74c8ff884cde1e7'
                        deleted: true
                        key: {
                            name: 'x_incsim_probe'
                            element: 'NULL'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'a7138b95f6da45e8b876e8c2d8069daa'
                        deleted: true
                        key: {
                            list_id: {
                                id: '02c564aeaea54d2b8b7b5675c1eb3c45'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '6acd2268e7d0436bbc65cb40c6ec532f'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'verdict_by'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: 'a8005223f0c44f448ade8db5e54ec947'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'dense'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'a810f5f421d649d49c0ce37648af2c02'
                        key: {
                            list_id: {
                                id: '2f67cb8c050a42ceafe426fdc4cdfb61'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'incident'
                                }
                            }
                            element: 'rank'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: 'a82ab615db584bacadc277ed8928a248'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'model_version'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'ab240d916134493d9aba79386c5f2154'
                        key: {
                            list_id: {
                                id: 'b6ed9d6abe154b42bdf7622efe2c6257'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'threshold'
                        }
                    },
                    {
                        table: 'sys_choice'
                        id: 'ab36e8f988724089911053e8cec09339'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'operation'
                            value: 'push'
                            language: 'en'
                            dependent_value: 'NULL'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'accd5ed4c06946039fb0ba0c90d9c69c'
                        deleted: true
                        key: {
                            list_id: {
                                id: '21516c3256a14abd90cc4a5a945fcbe8'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '353d59be8f4441ec92f439c7042d420b'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'incident'
                                }
                            }
                            element: 'threshold_calibrated'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: 'acf5a38dfff34642810cab98620a3783'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'verdict_at'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'ad85f9df667f47deb0a754b9aa7bec20'
                        key: {
                            list_id: {
                                id: 'b6ed9d6abe154b42bdf7622efe2c6257'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'short_description'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'b0419dcd400141e595843c44110fb293'
                        deleted: true
                        key: {
                            list_id: {
                                id: '02c564aeaea54d2b8b7b5675c1eb3c45'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '6acd2268e7d0436bbc65cb40c6ec532f'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'suggested_number'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'b2c1df424aee490ea8050f46d6a603b9'
                        key: {
                            list_id: {
                                id: 'b6ed9d6abe154b42bdf7622efe2c6257'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'resolved_at'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'b33662664e244307a2213f67b27a108a'
                        deleted: true
                        key: {
                            list_id: {
                                id: '02c564aeaea54d2b8b7b5675c1eb3c45'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '6acd2268e7d0436bbc65cb40c6ec532f'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'threshold_calibrated'
                        }
                    },
                    {
                        table: 'sys_ui_list'
                        id: 'b6ed9d6abe154b42bdf7622efe2c6257'
                        key: {
                            name: 'x_incsim_suggestion'
                            view: {
                                id: 'Default view'
                                key: {
                                    name: 'NULL'
                                }
                            }
                            sys_domain: 'global'
                            element: 'NULL'
                            relationship: 'NULL'
                            parent: 'NULL'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: 'b93a83b6947b4bea80aa305dc3f2f6c7'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'last_error'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_choice'
                        id: 'b9c6e8d513f8434ab5ee24a08d19d73d'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'state'
                            value: 'superseded'
                            language: 'en'
                            dependent_value: 'NULL'
                        }
                    },
                    {
                        table: 'sys_choice'
                        id: 'ba4b5d583b804827a796cda984eb0181'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'operation'
                            value: 'similar'
                            language: 'en'
                            dependent_value: 'NULL'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: 'bd1503a4d13740cb8a60e5b7d38884bb'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'payload'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: 'bdc5f7e75bae4b78896fdc9f7442e4c6'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'number'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'bdf7ace4cea84f50bd7ed93b68582935'
                        deleted: true
                        key: {
                            list_id: {
                                id: '21516c3256a14abd90cc4a5a945fcbe8'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '353d59be8f4441ec92f439c7042d420b'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'incident'
                                }
                            }
                            element: 'feedback_state'
                        }
                    },
                    {
                        table: 'sys_index'
                        id: 'beda9bc2ec3b4615b8b2355b7584dd41'
                        key: {
                            logical_table_name: 'x_incsim_suggestion'
                            col_name_string: 'incident'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: 'bedde7203d9e4fb698baefe99df8f3da'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'short_description'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: 'c515221804bd40ffadb97b8208b4dffb'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'rank'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: 'c7edcfd4ad7b4535b13e047922b2306a'
                        deleted: true
                        key: {
                            name: 'x_incsim_probe'
                            element: 'a'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: 'c8e1da34786f4197b6451a233a3061ed'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'threshold_calibrated'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'cb41a8f6bbee40a781bccb7c98958fcb'
                        deleted: true
                        key: {
                            list_id: {
                                id: '21516c3256a14abd90cc4a5a945fcbe8'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '353d59be8f4441ec92f439c7042d420b'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'incident'
                                }
                            }
                            element: 'close_code'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: 'ccc39d1f977640b19a30afc5ed3ba7b8'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'suggested'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'ce5fc536b47c4e89af32869844e75571'
                        deleted: true
                        key: {
                            list_id: {
                                id: '02c564aeaea54d2b8b7b5675c1eb3c45'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '6acd2268e7d0436bbc65cb40c6ec532f'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'rank'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'd68d1d56648e46399c45e720afa66d20'
                        key: {
                            list_id: {
                                id: 'b6ed9d6abe154b42bdf7622efe2c6257'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'model_version'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'd6aaf1964078472093d900d032df4527'
                        key: {
                            list_id: {
                                id: 'b6ed9d6abe154b42bdf7622efe2c6257'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'dense'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'd74e04736ded4cde95fd8e642f12a8ca'
                        key: {
                            list_id: {
                                id: '2f67cb8c050a42ceafe426fdc4cdfb61'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'incident'
                                }
                            }
                            element: 'close_notes'
                        }
                    },
                    {
                        table: 'sys_choice'
                        id: 'd7b7da5a1e2a4a82b9d36cb414e81203'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'verdict'
                            value: 'not_similar'
                            language: 'en'
                            dependent_value: 'NULL'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'd995597f9452408ba4703b92040b65fb'
                        key: {
                            list_id: {
                                id: 'b6ed9d6abe154b42bdf7622efe2c6257'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'rank'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'dde8ab33323248d09e2b923076c92a3a'
                        deleted: true
                        key: {
                            list_id: {
                                id: '21516c3256a14abd90cc4a5a945fcbe8'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '353d59be8f4441ec92f439c7042d420b'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'incident'
                                }
                            }
                            element: 'similar'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'de7daaa6787b438595731c101b6aa371'
                        key: {
                            list_id: {
                                id: 'b6ed9d6abe154b42bdf7622efe2c6257'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'threshold_target'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: 'e117f3426fe14ea284d27ebcb5a1a12e'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'resolved_at'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'e263f97c5581482b97a9e4a8ef499a7a'
                        key: {
                            list_id: {
                                id: '2f67cb8c050a42ceafe426fdc4cdfb61'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'incident'
                                }
                            }
                            element: 'similar'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'e47e8cb068a04f198a7f7033cd3670e9'
                        key: {
                            list_id: {
                                id: 'b6ed9d6abe154b42bdf7622efe2c6257'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'verdict'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: 'e5cda83c1335405cb90ee6de2d816223'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'score'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: 'e5fad7e8d61640bfad0a773d8e6c1395'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'suggested_state'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: 'e7131781e2eb4e399d45d57079b7faba'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'dense'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'e7e5eb0c28b5462b8e1f9269882bcb4d'
                        key: {
                            list_id: {
                                id: '2f67cb8c050a42ceafe426fdc4cdfb61'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'incident'
                                }
                            }
                            element: 'feedback_state'
                        }
                    },
                    {
                        table: 'sys_choice'
                        id: 'e926ce22699445dfbbaafde83b051e1a'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'state'
                            value: 'failed'
                            language: 'en'
                            dependent_value: 'NULL'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: 'ea4e02168ce14183ad149789e10f44f2'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'last_status'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: 'ebb42f7a2e244ccfba01f46f0c36900c'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'attempts'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'eff1a5693a594a52b26253ba4f2066a3'
                        deleted: true
                        key: {
                            list_id: {
                                id: '02c564aeaea54d2b8b7b5675c1eb3c45'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '6acd2268e7d0436bbc65cb40c6ec532f'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'incident'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: 'f1ec84c9d3fb4ab6b718a2664bd9f210'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'verdict'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: 'f2498333e1344cafadf9ac35394f10e7'
                        key: {
                            name: 'x_incsim_retry'
                            element: 'next_attempt'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: 'f25ab40bc5f24af2b72e2d5e8a8b8035'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'threshold_calibrated'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'f65e079d3c4149d3942ca45c50588fa7'
                        deleted: true
                        key: {
                            list_id: {
                                id: '02c564aeaea54d2b8b7b5675c1eb3c45'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '6acd2268e7d0436bbc65cb40c6ec532f'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'resolved_at'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: 'f8b7ba3ac9b14de8a2ad039aafeac89b'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'asked_at'
                            language: 'en'
                        }
                    },
                    {
                        table: 'sys_dictionary'
                        id: 'fa91996ae1de4426a816a6e697a8f415'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'suggested_number'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'facbf12283d24f71a6c87c05dfbae1b0'
                        key: {
                            list_id: {
                                id: '2f67cb8c050a42ceafe426fdc4cdfb61'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: 'Default view'
                                        key: {
                                            name: 'NULL'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'incident'
                                }
                            }
                            element: 'resolved_at'
                        }
                    },
                    {
                        table: 'sys_documentation'
                        id: 'fc204f16fc694f2d9ad8a05e316b7ac6'
                        key: {
                            name: 'x_incsim_suggestion'
                            element: 'resolved_at'
                            language: 'en'
                        }
                    },
                    {
                        table: 'ua_table_licensing_config'
                        id: 'fc4211ed3f3e4722bc3ba5938dbdb49c'
                        deleted: true
                        key: {
                            name: 'x_incsim_probe'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'fd8f821645cb4c05b8027f4302bb53ff'
                        deleted: true
                        key: {
                            list_id: {
                                id: '02c564aeaea54d2b8b7b5675c1eb3c45'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '6acd2268e7d0436bbc65cb40c6ec532f'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'NULL'
                                }
                            }
                            element: 'close_code'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'fe359db4ddbc437b8799876020859858'
                        deleted: true
                        key: {
                            list_id: {
                                id: '21516c3256a14abd90cc4a5a945fcbe8'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '353d59be8f4441ec92f439c7042d420b'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'incident'
                                }
                            }
                            element: 'close_notes'
                        }
                    },
                    {
                        table: 'sys_ui_list_element'
                        id: 'fe80b74b854647f99c94914c0ab509d1'
                        deleted: true
                        key: {
                            list_id: {
                                id: '21516c3256a14abd90cc4a5a945fcbe8'
                                key: {
                                    name: 'x_incsim_suggestion'
                                    view: {
                                        id: '353d59be8f4441ec92f439c7042d420b'
                                        key: {
                                            name: 'default_view'
                                        }
                                    }
                                    sys_domain: 'global'
                                    element: 'NULL'
                                    relationship: 'NULL'
                                    parent: 'incident'
                                }
                            }
                            element: 'score'
                        }
                    },
                ]
            }
        }
    }
}
